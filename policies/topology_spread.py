"""PodTopologySpread: `spec.topologySpreadConstraints`, as kube-scheduler v1.37 evaluates them.

A constraint counts the pods matching its `labelSelector` (same namespace as the incoming pod, not being
deleted) in each domain of its `topologyKey` (any node label: kubernetes.io/hostname, a zone, a rack…).
Only nodes that carry *every* constraint's key and pass the node inclusion policies count:
`nodeAffinityPolicy` Honor (the default: the pod's nodeSelector and required node affinity) and
`nodeTaintsPolicy` Ignore (the default; Honor skips nodes with NoSchedule/NoExecute taints the pod does not
tolerate). `matchLabelKeys` add the pod's own values for those keys to the selector.

- DoNotSchedule (filter): placing the pod must keep `count(domain) + self - min(count) <= maxSkew`, where
  `self` is 1 if the pod matches its own selector; with fewer than `minDomains` domains the minimum is 0.
  A node without the key is rejected with the "(missing required label)" reason.
- ScheduleAnyway (score): fewer matching pods in the node's domains is better:
  Σ count * log(domains + 2) + (maxSkew - 1) per node, reversed so the emptiest domain gets 100. As in kube,
  the domains are those of the nodes that passed the filters (`CycleState.scored`) and carry every key, and
  the scores are normalised over those nodes (`(max + min - s) / max`); the pods are counted on all nodes.

- System defaults (kube's `defaultingType: System`): a pod without constraints of its own that a Service,
  ReplicationController, ReplicaSet or StatefulSet selects is scored as if it had ScheduleAnyway constraints
  of maxSkew 3 on the hostname and 5 on the zone over the pods they select (`system_default_constraints`),
  when the caller knows those objects (`CycleState.selectors`).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import ClassVar

from kubernetes.client import V1LabelSelector, V1LabelSelectorRequirement, V1Pod

from policies import labels
from policies.framework import (
    MAX_SCORE,
    SUCCESS,
    CycleState,
    Key,
    NodeInfo,
    Normalize,
    PreFilterSkip,
    Status,
    UniformScore,
    WorkloadSelectors,
    unresolvable,
    unschedulable,
)
from policies.node_affinity import admits_all as node_affinity_admits_all
from policies.node_affinity import matches as node_affinity_matches
from policies.node_table import whole_table
from policies.taint_toleration import FILTERED_EFFECTS, untolerated

SPREAD = "PodTopologySpread"
MISMATCH = "node(s) didn't match pod topology spread constraints"
MISSING_LABEL = f"{MISMATCH} (missing required label)"
DO_NOT_SCHEDULE, SCHEDULE_ANYWAY = "DoNotSchedule", "ScheduleAnyway"
HONOR = "Honor"
HOSTNAME = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"
# Cluster default constraints: (maxSkew, topologyKey, whenUnsatisfiable); kube's system defaults
# (podtopologyspread/plugin.go systemDefaultConstraints).
DefaultConstraint = tuple[int, str, str]
SYSTEM_DEFAULTS: tuple[DefaultConstraint, ...] = ((3, HOSTNAME, SCHEDULE_ANYWAY), (5, ZONE, SCHEDULE_ANYWAY))


@dataclass(frozen=True, slots=True)
class Constraint:
    max_skew: int
    key: str
    selector: V1LabelSelector | None
    min_domains: int = 1
    honor_node_affinity: bool = True
    honor_taints: bool = False
    # The selector as text: what a node's count of matching pods is remembered under (`_matching_pods`).
    selected: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "selected", repr(self.selector))


def constraints(pod: V1Pod, when_unsatisfiable: str) -> list[Constraint]:
    """The pod's constraints of one kind, with kube's defaults filled in."""
    spec = pod.spec
    own = labels.pod_labels(pod)
    out = []
    for c in (spec.topology_spread_constraints if spec else None) or []:
        if c.when_unsatisfiable != when_unsatisfiable:
            continue
        extra = {k: own[k] for k in c.match_label_keys or [] if k in own}
        out.append(
            Constraint(
                max_skew=int(c.max_skew),
                key=str(c.topology_key),
                selector=labels.with_labels(c.label_selector, extra),
                min_domains=int(c.min_domains or 1),
                honor_node_affinity=(c.node_affinity_policy or HONOR) == HONOR,
                honor_taints=c.node_taints_policy == HONOR,
            )
        )
    return out


def _matching_pods(node: NodeInfo, constraint: Constraint, namespace: str) -> int:
    """Remembered on the node until it changes: the next pods of a workload count the same pods again."""
    key = (SPREAD, namespace, constraint.selected)
    count: int | None = node.memo.get(key)
    if count is None:
        # kube's countPodsMatchSelector counts nothing for an empty selector, though the pod itself matches it.
        count = node.memo[key] = (
            0
            if labels.is_empty(constraint.selector)
            else sum(
                1
                for p in node.pods.values()
                if not p.deleting and p.namespace == namespace and labels.matches(constraint.selector, p.labels)
            )
        )
    return count


class _Counting:
    """Counts one pod's constraints' matching pods per domain, node by node (with sign -1: takes a node's away).
    Only nodes with every constraint's key count (`require_all`; else each constraint counts the nodes with its
    own key, as kube does for its system defaults), and of those, the ones its node inclusion policies admit."""

    def __init__(self, pod: V1Pod, cs: Sequence[Constraint], require_all: bool = True) -> None:
        self.pod, self.cs, self.require_all = pod, cs, require_all
        self.namespace = labels.pod_namespace(pod)
        self.keys = [c.key for c in cs]
        # Per constraint: every node is admitted (no node affinity to honour, taints ignored), so the per-node
        # check can be left out.
        everywhere = node_affinity_admits_all(pod)
        self.admitted = [(everywhere or not c.honor_node_affinity) and not c.honor_taints for c in cs]

    def contribution(self, node: NodeInfo, i: int) -> tuple[tuple[str, int], ...]:
        """What `node` counts for constraint i: its domain and its matching pods, or nothing when it does not
        count (node_table.tally's form)."""
        c, node_labels = self.cs[i], node.labels
        if self.require_all and not all(k in node_labels for k in self.keys):
            return ()
        domain = node_labels.get(c.key)
        if domain is None or not (self.admitted[i] or self._included(node, c)):
            return ()
        return ((domain, _matching_pods(node, c, self.namespace)),)

    def add(self, node: NodeInfo, counts: list[Counter[str]], sign: int = 1) -> None:
        for i, domains in enumerate(counts):
            for domain, count in self.contribution(node, i):
                domains[domain] += sign * count

    def _included(self, node: NodeInfo, constraint: Constraint) -> bool:
        if constraint.honor_node_affinity and not node_affinity_matches(self.pod, node):
            return False
        return not (constraint.honor_taints and untolerated(self.pod, node.taints, FILTERED_EFFECTS))


def domain_counts(
    pod: V1Pod, cs: Sequence[Constraint], nodes: Sequence[NodeInfo], require_all: bool = True
) -> list[Counter[str]]:
    """Matching pods per domain, one Counter per constraint; every eligible domain is present, even at 0
    (see _Counting for which nodes count). Over all the cache's nodes, a constraint every node is admitted to
    reads the sums the cache's table keeps (node_table.tally) instead of counting every node again."""
    counting = _Counting(pod, cs, require_all)
    table = whole_table(nodes)
    counts: list[Counter[str]] = []
    for i, c in enumerate(cs):
        if table is not None and counting.admitted[i]:
            key = (SPREAD, counting.namespace, c.selected, c.key, tuple(counting.keys) if require_all else ())
            counts.append(Counter(table.tally(key, partial(counting.contribution, i=i))))
            continue
        domains: Counter[str] = Counter()
        for node in nodes:
            for domain, count in counting.contribution(node, i):
                domains[domain] += count
        counts.append(domains)
    return counts


@dataclass(frozen=True, slots=True)
class _FilterState:
    constraints: list[Constraint]
    counts: list[Counter[str]]
    self_match: list[bool]


def _filter_state(pod: V1Pod, state: CycleState, defaults: Sequence[DefaultConstraint]) -> _FilterState | None:
    if state.base is not None and state.change is not None:
        # One node changed (preemption, nominated pods): adjust the base's counts for it, as kube's
        # PreFilterExtensions AddPod/RemovePod do, rather than count the cluster again.
        base = state.base
        s = base.memo(_FILTER_STATE, lambda: _filter_state(pod, base, defaults))
        if s is None:
            return None
        old, new = state.change
        counts = [Counter(c) for c in s.counts]
        counting = _Counting(pod, s.constraints)
        counting.add(old, counts, -1)
        counting.add(new, counts)
        return _FilterState(s.constraints, counts, s.self_match)
    cs = constraints(pod, DO_NOT_SCHEDULE) or default_constraints(pod, state.selectors, defaults, DO_NOT_SCHEDULE)
    if not cs:
        return None
    own = labels.pod_labels(pod)
    return _FilterState(cs, domain_counts(pod, cs, state.nodes), [labels.matches(c.selector, own) for c in cs])


def system_default_constraints(pod: V1Pod, selectors: WorkloadSelectors | None) -> list[Constraint]:
    """kube's system defaults (podtopologyspread/plugin.go, `defaultingType: System`) for a pod without
    constraints of its own: ScheduleAnyway, maxSkew 3 on the hostname and 5 on the zone, over the pods its
    Services, ReplicationController, ReplicaSet or StatefulSet select (helper.DefaultSelector); none when nothing
    selects it."""
    return default_constraints(pod, selectors, SYSTEM_DEFAULTS, SCHEDULE_ANYWAY)


def default_constraints(
    pod: V1Pod, selectors: WorkloadSelectors | None, defaults: Sequence[DefaultConstraint], when_unsatisfiable: str
) -> list[Constraint]:
    """The cluster's default constraints of one kind for a pod without constraints of its own (kube's
    buildDefaultConstraints), over `default_selector`."""
    spec = pod.spec
    wanted = [(skew, key) for skew, key, when in defaults if when == when_unsatisfiable]
    if not wanted or selectors is None or (spec and spec.topology_spread_constraints):
        return []
    selector = default_selector(pod, selectors)
    if selector is None:
        return []
    return [Constraint(max_skew, key, selector) for max_skew, key in wanted]


def default_selector(pod: V1Pod, selectors: WorkloadSelectors) -> V1LabelSelector | None:
    """kube's helper.DefaultSelector: the labels every Service selecting the pod selects (merged), and its
    controller's selector (a ReplicationController's merged in, a ReplicaSet's or StatefulSet's AND-ed); None
    when that is empty."""
    namespace, own = labels.pod_namespace(pod), labels.pod_labels(pod)
    merged: dict[str, str] = {}
    for service in selectors.services.get(namespace, {}).values():
        if all(own.get(k) == v for k, v in service.items()):
            merged.update(service)
    expressions: list[V1LabelSelectorRequirement] = []
    owner = next((o for o in (pod.metadata.owner_references or []) if o.controller), None) if pod.metadata else None
    if owner is not None and owner.api_version in (("v1",) if owner.kind == "ReplicationController" else ("apps/v1",)):
        found = selectors.controllers.get((str(owner.kind), namespace, str(owner.name)))
        if isinstance(found, Mapping):
            merged.update(found)
        elif found is not None:
            expressions.extend(
                V1LabelSelectorRequirement(key=k, operator="In", values=[v])
                for k, v in sorted((found.match_labels or {}).items())
            )
            expressions.extend(found.match_expressions or [])
    if not merged and not expressions:
        return None
    return V1LabelSelector(match_labels=merged or None, match_expressions=expressions or None)


def _score_state(
    pod: V1Pod,
    nodes: Sequence[NodeInfo],
    scored: Sequence[NodeInfo],
    selectors: WorkloadSelectors | None = None,
    *,
    defaults: Sequence[DefaultConstraint] = SYSTEM_DEFAULTS,
    system_defaulted: bool = True,
) -> dict[str, int] | None:
    """kube's normalised score per name of the `scored` (feasible) nodes for the ScheduleAnyway constraints
    (kube's PreScore, Score and NormalizeScore; see the module docstring), or the system defaults. With the
    pod's own constraints, nodes without every key are left out (kube's ignored nodes); with the system
    defaults, a node scores on the keys it has (kube's requireAllTopologies = false)."""
    cs = constraints(pod, SCHEDULE_ANYWAY)
    require_all = True
    if not cs:
        cs = default_constraints(pod, selectors, defaults, SCHEDULE_ANYWAY)
        require_all = not system_defaulted
    if not cs:
        return None
    counts = domain_counts(pod, cs, nodes, require_all)
    candidates = [n for n in scored if not require_all or all(c.key in n.labels for c in cs)]
    # Each domain's weight: log(the number of domains among the candidates + 2); a hostname is one per node.
    sizes = [
        len(candidates) if c.key == HOSTNAME else len({n.labels[c.key] for n in candidates if c.key in n.labels})
        for c in cs
    ]
    weights = [math.log(size + 2) for size in sizes]
    raw = {
        n.name: math.floor(
            sum(
                counts[i][n.labels[c.key]] * weights[i] + (c.max_skew - 1)
                for i, c in enumerate(cs)
                if c.key in n.labels
            )
            + 0.5
        )
        for n in candidates
    }
    top, bottom = max(raw.values(), default=0), min(raw.values(), default=0)
    if top == 0:
        return dict.fromkeys(raw, MAX_SCORE)
    return {name: MAX_SCORE * (top + bottom - s) // top for name, s in raw.items()}


_FILTER_STATE: Key[_FilterState | None] = Key("PodTopologySpread/filter")
_SCORE_STATE: Key[dict[str, int] | None] = Key("PodTopologySpread/score")


class PodTopologySpread(PreFilterSkip, UniformScore):
    """`defaults`: the cluster's default constraints (kube's PodTopologySpreadArgs: `defaultingType: System`
    is SYSTEM_DEFAULTS; `List` gives its own `defaultConstraints`, and then nodes need every key)."""

    name = "PodTopologySpread"
    node_only: ClassVar[bool] = False
    normalize = Normalize.NONE

    def __init__(self, defaults: Sequence[DefaultConstraint] | None = None) -> None:
        self.system_defaulted = defaults is None
        self.defaults: Sequence[DefaultConstraint] = SYSTEM_DEFAULTS if defaults is None else defaults

    def skips(self, pod: V1Pod, state: CycleState) -> bool:
        return not constraints(pod, DO_NOT_SCHEDULE) and not default_constraints(
            pod, state.selectors, self.defaults, DO_NOT_SCHEDULE
        )

    def uniform_score(self, pod: V1Pod, state: CycleState) -> float | None:
        if constraints(pod, SCHEDULE_ANYWAY) or default_constraints(
            pod, state.selectors, self.defaults, SCHEDULE_ANYWAY
        ):
            return None
        return 0.0

    def filter(self, pod: V1Pod, node: NodeInfo, state: CycleState) -> Status:
        s = state.memo(_FILTER_STATE, lambda: _filter_state(pod, state, self.defaults))
        if s is None:
            return SUCCESS
        for c, domains, self_match in zip(s.constraints, s.counts, s.self_match, strict=True):
            domain = node.labels.get(c.key)
            if domain is None:
                # Unresolvable: evicting pods does not label the node (podtopologyspread/filtering.go).
                return unresolvable(MISSING_LABEL)
            minimum = 0 if len(domains) < c.min_domains else min(domains.values(), default=0)
            if domains[domain] + int(self_match) - minimum > c.max_skew:
                return unschedulable(MISMATCH)
        return SUCCESS

    def score(self, pod: V1Pod, node: NodeInfo, state: CycleState) -> float:
        """0..100; a pod without ScheduleAnyway constraints scores 0 everywhere (kube skips the plugin), and
        so does a node missing one of the keys (kube's ignored nodes)."""
        scores = state.memo(
            _SCORE_STATE,
            lambda: _score_state(
                pod,
                state.nodes,
                state.scored,
                state.selectors,
                defaults=self.defaults,
                system_defaulted=self.system_defaulted,
            ),
        )
        return float(scores.get(node.name, 0)) if scores else 0.0
