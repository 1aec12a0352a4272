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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from kubernetes.client import V1Affinity, V1LabelSelector, V1Pod, V1PodAffinityTerm

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
    unresolvable,
    unschedulable,
)
from policies.node_table import WITH_AFFINITY_PODS, WITH_ANTI_AFFINITY_PODS, nodes_with

AFFINITY_MISMATCH = "node(s) didn't match pod affinity rules"
ANTI_AFFINITY_MISMATCH = "node(s) didn't match pod anti-affinity rules"
EXISTING_ANTI_AFFINITY_MISMATCH = "node(s) didn't satisfy existing pods anti-affinity rules"

Domain = tuple[str, str]  # (topology key, value)


@dataclass(frozen=True, slots=True)
class Term:
    selector: V1LabelSelector | None
    key: str
    namespaces: frozenset[str]
    namespace_selector: V1LabelSelector | None

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


def _term(owner_namespace: str, term: V1PodAffinityTerm) -> Term:
    namespaces = frozenset(term.namespaces or [])
    if not namespaces and term.namespace_selector is None:
        namespaces = frozenset([owner_namespace])
    return Term(term.label_selector, str(term.topology_key), namespaces, term.namespace_selector)


def required_terms(affinity: V1Affinity | None, namespace: str, anti: bool) -> list[Term]:
    section = (affinity.pod_anti_affinity if anti else affinity.pod_affinity) if affinity else None
    required = section.required_during_scheduling_ignored_during_execution if section else None
    return [_term(namespace, t) for t in required or []]


def _domain(node: NodeInfo, key: str) -> Domain | None:
    value = node.labels.get(key)
    return None if value is None else (key, value)


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


Namespaces = Mapping[str, Mapping[str, str]] | None  # every namespace's labels, when known


def _count_existing(
    node: NodeInfo,
    namespace: str,
    own_labels: Mapping[str, str],
    into: Counter[Domain],
    sign: int,
    *,
    known: Namespaces,
) -> None:
    """The domains where this node's pods' required anti-affinity terms reject the incoming pod."""
    for other in node.anti_affinity_pods.values():
        for term in required_terms(other.affinity, other.namespace, anti=True):
            if (domain := _domain(node, term.key)) and term.matches(namespace, own_labels, known):
                into[domain] += sign


def _count_incoming(
    node: NodeInfo,
    affinity: list[Term],
    anti_affinity: list[Term],
    into: tuple[Counter[Domain], Counter[Domain]],
    sign: int,
    *,
    known: Namespaces,
) -> None:
    """The domains where this node's pods match all the incoming pod's affinity terms / one of its
    anti-affinity terms."""
    affinity_domains, anti_affinity_domains = into
    for other in node.pods.values():
        if affinity and all(t.matches(other.namespace, other.labels, known) for t in affinity):
            for t in affinity:
                if d := _domain(node, t.key):
                    affinity_domains[d] += sign
        for t in anti_affinity:
            if t.matches(other.namespace, other.labels, known) and (d := _domain(node, t.key)):
                anti_affinity_domains[d] += sign


def _state(pod: V1Pod, state: CycleState) -> _State | None:
    """kube's PreFilter: one pass over the cluster per pod, only as wide as the terms require. A state for the
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
            _count_existing(node, namespace, own_labels, rejecting, sign, known=known)
            if s.affinity or s.anti_affinity:
                _count_incoming(node, s.affinity, s.anti_affinity, adjusted, sign, known=known)
        # Unary + drops the domains down to zero: "no matching pod anywhere" reads an empty Counter.
        return _State(s.affinity, s.anti_affinity, +adjusted[0], +adjusted[1], +rejecting, s.self_affinity)
    affinity_spec = pod.spec.affinity if pod.spec else None
    affinity = required_terms(affinity_spec, namespace, anti=False)
    anti_affinity = required_terms(affinity_spec, namespace, anti=True)
    existing: Counter[Domain] = Counter()
    for node in nodes_with(WITH_ANTI_AFFINITY_PODS, state.nodes):
        _count_existing(node, namespace, own_labels, existing, 1, known=known)
    if not affinity and not anti_affinity and not existing:
        return None
    counts: tuple[Counter[Domain], Counter[Domain]] = (Counter(), Counter())
    if affinity or anti_affinity:
        for node in state.nodes:
            _count_incoming(node, affinity, anti_affinity, counts, 1, known=known)
    self_affinity = bool(affinity) and all(t.matches(namespace, own_labels, known) for t in affinity)
    return _State(affinity, anti_affinity, counts[0], counts[1], existing, self_affinity)


def _affinity_satisfied(s: _State, node_labels: Mapping[str, str]) -> bool:
    if not s.affinity:
        return True
    if not all(t.key in node_labels for t in s.affinity):
        return False
    if all(s.affinity_domains[(t.key, node_labels[t.key])] > 0 for t in s.affinity):
        return True
    # The first pod of a self-affine group: nothing matches anywhere yet, and it matches its own terms.
    return not s.affinity_domains and s.self_affinity


_STATE: Key[_State | None] = Key("InterPodAffinity/state")


HARD_POD_AFFINITY_WEIGHT = 1  # kube's InterPodAffinityArgs default


def preferred_terms(affinity: V1Affinity | None, namespace: str, anti: bool) -> list[tuple[Term, int]]:
    section = (affinity.pod_anti_affinity if anti else affinity.pod_affinity) if affinity else None
    preferred = section.preferred_during_scheduling_ignored_during_execution if section else None
    return [(_term(namespace, t.pod_affinity_term), int(t.weight)) for t in preferred or []]


def _score_state(
    pod: V1Pod, nodes: Sequence[NodeInfo], known: Mapping[str, Mapping[str, str]] | None
) -> Counter[Domain] | None:
    """kube's PreScore (interpodaffinity/scoring.go): a score per topology domain from
    - the pod's preferred affinity (+weight) and anti-affinity (-weight) terms matching pods in that domain;
    - existing pods' required affinity terms matching the pod (+HARD_POD_AFFINITY_WEIGHT), and their preferred
      affinity (+weight) and anti-affinity (-weight) terms matching the pod, in the existing pod's domain.
    None when no term matched anything (kube's Skip: every node scores 0)."""
    namespace, own_labels = labels.pod_namespace(pod), labels.pod_labels(pod)
    affinity_spec = pod.spec.affinity if pod.spec else None
    own_terms = [
        *preferred_terms(affinity_spec, namespace, anti=False),
        *((t, -w) for t, w in preferred_terms(affinity_spec, namespace, anti=True)),
    ]
    scores: Counter[Domain] = Counter()
    touched = False
    # Without terms of its own, only pods with terms can score it (kube's HavePodsWithAffinityList); the
    # comprehension skips the other nodes at C speed.
    with_pods = [n for n in nodes if n.pods] if own_terms else nodes_with(WITH_AFFINITY_PODS, nodes)
    for node in with_pods:
        if not node.labels:
            continue
        for other in (node.pods if own_terms else node.affinity_pods).values():
            for term, weight in own_terms:
                if (domain := _domain(node, term.key)) and term.matches(other.namespace, other.labels, known):
                    scores[domain] += weight
                    touched = True
            if other.affinity is None:
                continue
            toward = [
                *((t, HARD_POD_AFFINITY_WEIGHT) for t in required_terms(other.affinity, other.namespace, anti=False)),
                *preferred_terms(other.affinity, other.namespace, anti=False),
                *((t, -w) for t, w in preferred_terms(other.affinity, other.namespace, anti=True)),
            ]
            for term, weight in toward:
                if (domain := _domain(node, term.key)) and term.matches(namespace, own_labels, known):
                    scores[domain] += weight
                    touched = True
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


class InterPodAffinity(PreFilterSkip, UniformScore):
    name = "InterPodAffinity"
    node_only: ClassVar[bool] = False
    normalize = Normalize.NONE

    def _scores(self, pod: V1Pod, state: CycleState) -> dict[str, int] | None:
        return state.memo(_SCORE, lambda: _normalised(_score_state(pod, state.nodes, state.namespaces), state.scored))

    def uniform_score(self, pod: V1Pod, state: CycleState) -> float | None:
        return 0.0 if self._scores(pod, state) is None else None

    def score(self, pod: V1Pod, node: NodeInfo, state: CycleState) -> float:
        """0..100: see `_score_state` and `_normalised`."""
        scores = self._scores(pod, state)
        return float(scores.get(node.name, 0)) if scores else 0.0

    def skips(self, pod: V1Pod, state: CycleState) -> bool:
        return state.memo(_STATE, lambda: _state(pod, state)) is None

    def filter(self, pod: V1Pod, node: NodeInfo, state: CycleState) -> Status:
        s = state.memo(_STATE, lambda: _state(pod, state))
        if s is None:
            return SUCCESS
        if not _affinity_satisfied(s, node.labels):
            # Unresolvable: evicting pods cannot add the pod the terms want (interpodaffinity/filtering.go);
            # the anti-affinity cases can be resolved by evicting the pods in the way.
            return unresolvable(AFFINITY_MISMATCH)
        if any((d := _domain(node, t.key)) and s.anti_affinity_domains[d] > 0 for t in s.anti_affinity):
            return unschedulable(ANTI_AFFINITY_MISMATCH)
        if s.existing_anti_affinity_domains and any(
            s.existing_anti_affinity_domains[(k, v)] > 0 for k, v in node.labels.items()
        ):
            return unschedulable(EXISTING_ANTI_AFFINITY_MISMATCH)
        return SUCCESS
