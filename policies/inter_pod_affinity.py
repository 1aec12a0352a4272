"""InterPodAffinity: required pod affinity and anti-affinity (filter) and preferred terms (score), as
kube-scheduler v1.37 checks and scores them (interpodaffinity/filtering.go, scoring.go; the score is described
at `_score_state`).

A term (`labelSelector`, `topologyKey`, `namespaces`/`namespaceSelector`) matches a pod in one of its
namespaces (the owner's own when neither is given) whose labels match the selector. A topology domain is
the set of nodes sharing the term's topologyKey value (kubernetes.io/hostname: one node; a zone: many).
A node is rejected, in this order, when
1. the pod's required affinity terms are not all satisfied: some pod matching *all* terms must run in the
   node's domain of every term; the first pod of a group that matches its own terms may go anywhere that
   carries the keys, as long as no matching pod runs anywhere yet;
2. a pod matching one of the pod's required anti-affinity terms runs in the node's domain of that term;
3. an existing pod's required anti-affinity term matches the incoming pod and that pod runs in the node's
   domain of its term (the symmetric rule).

A `namespaceSelector` is matched against the namespaces' labels when the caller knows them
(`CycleState.namespaces`, from the cache's Namespace informer); otherwise it sees only the
`kubernetes.io/metadata.name` label every namespace carries (`{}` still means all namespaces).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import numpy.typing as npt
from kubernetes.client import V1Affinity, V1LabelSelector, V1Pod, V1PodAffinityTerm

from policies import labels
from policies.framework import (
    MAX_SCORE,
    SUCCESS,
    BatchFilter,
    CycleState,
    Key,
    NodeInfo,
    Normalize,
    PreFilterSkip,
    Status,
    UniformScore,
    unresolvable,
    unschedulable,
)
from policies.node_table import WITH_AFFINITY_PODS, WITH_ANTI_AFFINITY_PODS, nodes_with, whole_table

AFFINITY_MISMATCH = "node(s) didn't match pod affinity rules"
ANTI_AFFINITY_MISMATCH = "node(s) didn't match pod anti-affinity rules"
EXISTING_ANTI_AFFINITY_MISMATCH = "node(s) didn't satisfy existing pods anti-affinity rules"

Domain = tuple[str, str]  # (topology key, value)

HARD_POD_AFFINITY_WEIGHT = 1  # kube's InterPodAffinityArgs default


@dataclass(frozen=True, slots=True)
class Term:
    selector: V1LabelSelector | None = field(compare=False)
    key: str
    namespaces: frozenset[str]
    namespace_selector: V1LabelSelector | None = field(compare=False)
    # What the selectors require: terms written alike are equal, one key of the node table's sums.
    selects: Hashable = field(init=False, repr=False)
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        selects = (labels.identity(self.selector), labels.identity(self.namespace_selector))
        object.__setattr__(self, "selects", selects)
        object.__setattr__(self, "_hash", hash((self.key, self.namespaces, selects)))

    def __hash__(self) -> int:
        return self._hash

    def matches(
        self,
        namespace: str,
        pod_labels: Mapping[str, str],
        namespaces: Mapping[str, Mapping[str, str]] | None = None,
    ) -> bool:
        """`namespaces`: every namespace's labels, when known (else a selector sees only the name label)."""
        in_scope = namespace in self.namespaces or labels.matches(
            self.namespace_selector, labels.namespace_labels(namespace, namespaces)
        )
        return in_scope and labels.matches(self.selector, pod_labels)


# Every distinct term once: the pods of a workload share theirs, and a term is then known by its identity.
_terms: dict[Term, Term] = {}


def _term(owner_namespace: str, term: V1PodAffinityTerm) -> Term:
    namespaces = frozenset(term.namespaces or [])
    if not namespaces and term.namespace_selector is None:
        namespaces = frozenset([owner_namespace])
    parsed = Term(term.label_selector, str(term.topology_key), namespaces, term.namespace_selector)
    return _terms.setdefault(parsed, parsed)


def required_terms(affinity: V1Affinity | None, namespace: str, anti: bool) -> list[Term]:
    section = (affinity.pod_anti_affinity if anti else affinity.pod_affinity) if affinity else None
    required = section.required_during_scheduling_ignored_during_execution if section else None
    return [_term(namespace, t) for t in required or []]


def preferred_terms(affinity: V1Affinity | None, namespace: str, anti: bool) -> list[tuple[Term, int]]:
    section = (affinity.pod_anti_affinity if anti else affinity.pod_affinity) if affinity else None
    preferred = section.preferred_during_scheduling_ignored_during_execution if section else None
    return [(_term(namespace, t.pod_affinity_term), int(t.weight)) for t in preferred or []]


def _domain(node: NodeInfo, key: str) -> Domain | None:
    value = node.labels.get(key)
    return None if value is None else (key, value)


Namespaces = Mapping[str, Mapping[str, str]] | None  # every namespace's labels, when known


# --- counting pods per topology domain ----------------------------------------------------------------------
# Over all the cache's nodes the counts are the sums its table keeps (node_table.tally): after the first pod,
# only the nodes changed since the last one are counted again. Whether a term matches the incoming pod is asked
# per term, not per pod; a term with a namespaceSelector is counted node by node, since namespace labels change
# without any node changing.

Weighted = tuple[Term, int, Domain]  # a term of one of a node's pods, its weight, the node's domain of it


def _repelling(node: NodeInfo) -> Counter[Weighted]:
    """The required anti-affinity terms of the node's pods: they reject a pod they match from their domain."""
    found: Counter[Weighted] = Counter()
    for other in node.anti_affinity_pods.values():
        for term in required_terms(other.affinity, other.namespace, anti=True):
            if domain := _domain(node, term.key):
                found[term, 1, domain] += 1
    return found


def _attracting(node: NodeInfo) -> Counter[Weighted]:
    """The terms of the node's pods that score a pod they match (`_score_state`): required affinity with the
    hard weight, preferred affinity with its weight, preferred anti-affinity with minus its weight."""
    found: Counter[Weighted] = Counter()
    for other in node.affinity_pods.values():
        for term, weight in (
            *((t, HARD_POD_AFFINITY_WEIGHT) for t in required_terms(other.affinity, other.namespace, anti=False)),
            *preferred_terms(other.affinity, other.namespace, anti=False),
            *((t, -w) for t, w in preferred_terms(other.affinity, other.namespace, anti=True)),
        ):
            if domain := _domain(node, term.key):
                found[term, weight, domain] += 1
    return found


def _add_matching(
    weighted: Iterable[tuple[Weighted, int]], pod: V1Pod, known: Namespaces, into: Counter[Domain], sign: int = 1
) -> bool:
    """Adds weight x count to the domain of every term that matches `pod`; True when some term did. Asks each
    term once: by its identity, since equal terms are one object (`_term`)."""
    namespace, own_labels = labels.pod_namespace(pod), labels.pod_labels(pod)
    matching: dict[int, bool] = {}
    touched = False
    for (term, weight, domain), count in weighted:
        if (hit := matching.get(id(term))) is None:
            hit = matching[id(term)] = term.matches(namespace, own_labels, known)
        if hit:
            into[domain] = into.get(domain, 0) + sign * weight * count
            touched = True
    return touched


def _weighted(
    nodes: Sequence[NodeInfo], which: int, terms: Callable[[NodeInfo], Counter[Weighted]]
) -> Iterable[tuple[Weighted, int]]:
    """The terms (`_repelling` or `_attracting`) of the pods of `nodes`, counted per domain."""
    if (table := whole_table(nodes)) is not None:
        return table.tally(terms, lambda node: terms(node).items()).items()
    return (pair for node in nodes_with(which, nodes) for pair in terms(node).items())


def _matching_all(node: NodeInfo, terms: Sequence[Term], known: Namespaces) -> Counter[Domain]:
    """Required affinity: the node's pods that match every term, in the node's domain of each term."""
    found: Counter[Domain] = Counter()
    matched = sum(all(t.matches(other.namespace, other.labels, known) for t in terms) for other in node.pods.values())
    if matched:
        for t in terms:
            if domain := _domain(node, t.key):
                found[domain] += matched
    return found


def _matching_each(node: NodeInfo, terms: Sequence[Term], known: Namespaces) -> Counter[Domain]:
    """Anti-affinity and preferred terms: per term, the node's pods that match it, in the node's domain of it."""
    found: Counter[Domain] = Counter()
    for t in terms:
        matched = sum(t.matches(other.namespace, other.labels, known) for other in node.pods.values())
        if matched and (domain := _domain(node, t.key)):
            found[domain] += matched
    return found


Matching = Callable[[NodeInfo, Sequence[Term], Namespaces], Counter[Domain]]


def _pods_matching(
    nodes: Sequence[NodeInfo], terms: Sequence[Term], count: Matching, known: Namespaces
) -> Counter[Domain]:
    """Pods matching the incoming pod's terms per domain (`count`: `_matching_all` or `_matching_each`).
    The caller must not change the Counter."""
    if not terms:
        return Counter()
    table = whole_table(nodes)
    if table is not None and all(t.namespace_selector is None for t in terms):
        return table.tally((count, tuple(terms)), lambda node: count(node, terms, None).items())
    found: Counter[Domain] = Counter()
    for node in nodes:
        found.update(count(node, terms, known))
    return found


@dataclass(frozen=True, slots=True)
class _State:
    affinity: list[Term]
    anti_affinity: list[Term]
    # Domains holding pods that match all affinity terms / some anti-affinity term of the incoming pod.
    affinity_domains: Counter[Domain]
    anti_affinity_domains: Counter[Domain]
    # Domains where an existing pod's anti-affinity term rejects the incoming pod.
    existing_anti_affinity_domains: Counter[Domain]
    self_affinity: bool
    # The topology keys of those domains, for the per-node lookups.
    anti_affinity_keys: frozenset[str] = field(init=False)
    existing_keys: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "anti_affinity_keys", frozenset(t.key for t in self.anti_affinity))
        object.__setattr__(self, "existing_keys", frozenset(k for k, _ in self.existing_anti_affinity_domains))


def _state(pod: V1Pod, state: CycleState) -> _State | None:
    """kube's PreFilter: the counts over the cluster, only as wide as the terms require. A state for the
    cluster with one node changed (preemption, nominated pods) adjusts the base state's counts for that node
    instead, as kube's PreFilterExtensions AddPod/RemovePod do. Namespace selectors see the namespaces' labels
    the state knows."""
    namespace, own_labels, known = labels.pod_namespace(pod), labels.pod_labels(pod), state.namespaces
    if state.base is not None and state.change is not None:
        base = state.base
        s = base.memo(_STATE, lambda: _state(pod, base))
        if s is None:  # the filter is skipped for this pod (PreFilterSkip), with or without the change
            return None
        adjusted = (Counter(s.affinity_domains), Counter(s.anti_affinity_domains))
        rejecting = Counter(s.existing_anti_affinity_domains)
        for node, sign in zip(state.change, (-1, 1), strict=True):
            _add_matching(_repelling(node).items(), pod, known, rejecting, sign)
            for into, found in zip(
                adjusted,
                (_matching_all(node, s.affinity, known), _matching_each(node, s.anti_affinity, known)),
                strict=True,
            ):
                into.update({domain: sign * count for domain, count in found.items()})
        # Unary + drops the domains down to zero: "no matching pod anywhere" reads an empty Counter.
        return _State(s.affinity, s.anti_affinity, +adjusted[0], +adjusted[1], +rejecting, s.self_affinity)
    affinity_spec = pod.spec.affinity if pod.spec else None
    affinity = required_terms(affinity_spec, namespace, anti=False)
    anti_affinity = required_terms(affinity_spec, namespace, anti=True)
    existing: Counter[Domain] = Counter()
    _add_matching(_weighted(state.nodes, WITH_ANTI_AFFINITY_PODS, _repelling), pod, known, existing)
    if not affinity and not anti_affinity and not existing:
        return None
    self_affinity = bool(affinity) and all(t.matches(namespace, own_labels, known) for t in affinity)
    return _State(
        affinity,
        anti_affinity,
        _pods_matching(state.nodes, affinity, _matching_all, known),
        _pods_matching(state.nodes, anti_affinity, _matching_each, known),
        existing,
        self_affinity,
    )


def _affinity_satisfied(s: _State, node_labels: Mapping[str, str]) -> bool:
    if not s.affinity:
        return True
    if not all(t.key in node_labels for t in s.affinity):
        return False
    if all(s.affinity_domains.get((t.key, node_labels[t.key]), 0) > 0 for t in s.affinity):
        return True
    # The first pod of a self-affine group: nothing matches anywhere yet, and it matches its own terms.
    return not s.affinity_domains and s.self_affinity


def _holds_pods(domains: Counter[Domain], keys: frozenset[str], node_labels: Mapping[str, str]) -> bool:
    """Whether the node is in one of `domains` (of these topology keys) that holds a pod."""
    return any(k in node_labels and domains.get((k, node_labels[k]), 0) > 0 for k in keys)


def _rejection(s: _State, node_labels: Mapping[str, str]) -> str | None:
    """Why the filter rejects the node (the first reason, in kube's order), or None."""
    if not _affinity_satisfied(s, node_labels):
        return AFFINITY_MISMATCH
    if _holds_pods(s.anti_affinity_domains, s.anti_affinity_keys, node_labels):
        return ANTI_AFFINITY_MISMATCH
    if _holds_pods(s.existing_anti_affinity_domains, s.existing_keys, node_labels):
        return EXISTING_ANTI_AFFINITY_MISMATCH
    return None


_STATE: Key[_State | None] = Key("InterPodAffinity/state")


def _score_state(
    pod: V1Pod, nodes: Sequence[NodeInfo], known: Mapping[str, Mapping[str, str]] | None
) -> Counter[Domain] | None:
    """kube's PreScore (interpodaffinity/scoring.go): a score per topology domain from
    - the pod's preferred affinity (+weight) and anti-affinity (-weight) terms matching pods in that domain;
    - existing pods' required affinity terms matching the pod (+HARD_POD_AFFINITY_WEIGHT), and their preferred
      affinity (+weight) and anti-affinity (-weight) terms matching the pod, in the existing pod's domain.
    None when no term matched anything (kube's Skip: every node scores 0)."""
    namespace = labels.pod_namespace(pod)
    affinity_spec = pod.spec.affinity if pod.spec else None
    scores: Counter[Domain] = Counter()
    touched = False
    for term, weight in (
        *preferred_terms(affinity_spec, namespace, anti=False),
        *((t, -w) for t, w in preferred_terms(affinity_spec, namespace, anti=True)),
    ):
        for domain, count in _pods_matching(nodes, [term], _matching_each, known).items():
            scores[domain] += weight * count
            touched = True
    touched |= _add_matching(_weighted(nodes, WITH_AFFINITY_PODS, _attracting), pod, known, scores)
    return scores if touched else None


def _normalised(scores: Counter[Domain] | None, scored: Sequence[NodeInfo]) -> dict[str, int] | None:
    """kube's Score and NormalizeScore: a node's raw score is the sum over its domains; then
    int(100 * ((raw - min) / (max - min))) over the scored nodes, 0 everywhere when all are equal."""
    if scores is None:
        return None
    keys = {key for key, _ in scores}
    raw = {n.name: sum(scores.get((k, n.labels[k]), 0) for k in keys if k in n.labels) for n in scored}
    low, high = min(raw.values(), default=0), max(raw.values(), default=0)
    if high == low:
        return dict.fromkeys(raw, 0)
    return {name: int(MAX_SCORE * ((value - low) / (high - low))) for name, value in raw.items()}


_SCORE: Key[dict[str, int] | None] = Key("InterPodAffinity/score")


class InterPodAffinity(PreFilterSkip, UniformScore, BatchFilter):
    name = "InterPodAffinity"
    node_only: ClassVar[bool] = False
    normalize = Normalize.NONE

    def _state(self, pod: V1Pod, state: CycleState) -> _State | None:
        return state.memo(_STATE, lambda: _state(pod, state))

    def _scores(self, pod: V1Pod, state: CycleState) -> dict[str, int] | None:
        return state.memo(_SCORE, lambda: _normalised(_score_state(pod, state.nodes, state.namespaces), state.scored))

    def uniform_score(self, pod: V1Pod, state: CycleState) -> float | None:
        return 0.0 if self._scores(pod, state) is None else None

    def score(self, pod: V1Pod, node: NodeInfo, state: CycleState) -> float:
        """0..100: see `_score_state` and `_normalised`."""
        scores = self._scores(pod, state)
        return float(scores.get(node.name, 0)) if scores else 0.0

    def skips(self, pod: V1Pod, state: CycleState) -> bool:
        return self._state(pod, state) is None

    def filter(self, pod: V1Pod, node: NodeInfo, state: CycleState) -> Status:
        s = self._state(pod, state)
        reason = None if s is None else _rejection(s, node.labels)
        if reason is None:
            return SUCCESS
        # Unresolvable: evicting pods cannot add the pod the terms want (interpodaffinity/filtering.go); the
        # anti-affinity cases can be resolved by evicting the pods in the way.
        return unresolvable(reason) if reason == AFFINITY_MISMATCH else unschedulable(reason)

    def filter_all(self, pod: V1Pod, nodes: Sequence[NodeInfo], state: CycleState) -> npt.NDArray[np.bool_]:
        """`filter`'s verdict for every node at once: whether it passes."""
        s = self._state(pod, state)
        passes = np.full(len(nodes), True)
        if s is None:
            return passes
        if s.affinity:
            passes &= np.fromiter((_affinity_satisfied(s, n.labels) for n in nodes), np.bool_, len(nodes))
        # `_holds_pods` a key at a time: one dict lookup a node (a hostname key), no call.
        for domains, keys in (
            (s.anti_affinity_domains, s.anti_affinity_keys),
            (s.existing_anti_affinity_domains, s.existing_keys),
        ):
            for k in keys:
                values = (n.labels.get(k) for n in nodes)
                passes &= np.fromiter((v is None or domains.get((k, v), 0) <= 0 for v in values), np.bool_, len(nodes))
        return passes
