"""NodeAffinity: `nodeSelector` and required node affinity must match; preferred terms add their weights."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import ClassVar

from kubernetes.client import V1NodeSelectorRequirement, V1NodeSelectorTerm, V1Pod, V1PreferredSchedulingTerm

from policies.framework import SUCCESS, CycleState, NodeInfo, Normalize, Status, UniformScore, unresolvable

MISMATCH = "node(s) didn't match Pod's node affinity/selector"


_GO_INT = re.compile(r"[+-]?[0-9]+")
_INT64 = range(-(2**63), 2**63)


def _integer(value: str) -> int | None:
    """Go's strconv.ParseInt(value, 10, 64): Python's int() would also take `1_0`, spaces and non-ASCII digits."""
    if not _GO_INT.fullmatch(value):
        return None
    number = int(value)
    return number if number in _INT64 else None


def requirement_matches(req: V1NodeSelectorRequirement, labels: Mapping[str, str]) -> bool:
    """kube's labels.Requirement.Matches for node selector operators."""
    values = req.values or []
    present = req.key in labels
    value = labels.get(req.key, "")
    match req.operator:
        case "In":
            return present and value in values
        case "NotIn":
            return not present or value not in values
        case "Exists":
            return present
        case "DoesNotExist":
            return not present
        case "Gt" | "Lt":
            have, bound = _integer(value), _integer(values[0]) if len(values) == 1 else None
            if not present or have is None or bound is None:
                return False
            return have > bound if req.operator == "Gt" else have < bound
    return False


def term_matches(term: V1NodeSelectorTerm, node: NodeInfo) -> bool:
    """Requirements in a term are AND-ed; a term with none matches no node (kube's rule)."""
    expressions = term.match_expressions or []
    # matchFields supports only metadata.name, so the node's name stands in for its fields.
    fields = term.match_fields or []
    if not expressions and not fields:
        return False
    return all(requirement_matches(r, node.labels) for r in expressions) and all(
        r.key == "metadata.name" and requirement_matches(r, {"metadata.name": node.name}) for r in fields
    )


def required_terms(pod: V1Pod) -> Sequence[V1NodeSelectorTerm] | None:
    affinity = pod.spec.affinity if pod.spec else None
    node_affinity = affinity.node_affinity if affinity else None
    required = node_affinity.required_during_scheduling_ignored_during_execution if node_affinity else None
    return None if required is None else (required.node_selector_terms or [])


def admits_all(pod: V1Pod) -> bool:
    """The pod has neither a nodeSelector nor required node affinity: `matches` holds for every node."""
    return not (pod.spec.node_selector if pod.spec else None) and required_terms(pod) is None


def matches(pod: V1Pod, node: NodeInfo) -> bool:
    selector = (pod.spec.node_selector if pod.spec else None) or {}
    if any(node.labels.get(k) != v for k, v in selector.items()):
        return False
    terms = required_terms(pod)
    return terms is None or any(term_matches(t, node) for t in terms)


def _preferred(pod: V1Pod) -> list[V1PreferredSchedulingTerm]:
    affinity = pod.spec.affinity if pod.spec else None
    node_affinity = affinity.node_affinity if affinity else None
    return list((node_affinity.preferred_during_scheduling_ignored_during_execution if node_affinity else None) or [])


class NodeAffinity(UniformScore):
    name = "NodeAffinity"
    node_only: ClassVar[bool] = True  # reads only the pod's spec and the node object (FilterCache)
    normalize = Normalize.MAX

    def filter(self, pod: V1Pod, node: NodeInfo, state: CycleState) -> Status:
        # Unresolvable: evicting pods does not change the node's labels (nodeaffinity/node_affinity.go).
        return SUCCESS if matches(pod, node) else unresolvable(MISMATCH)

    def uniform_score(self, pod: V1Pod, state: CycleState) -> float | None:
        return None if _preferred(pod) else 0.0

    def score(self, pod: V1Pod, node: NodeInfo, state: CycleState) -> float:
        """The sum of the weights of the preferred terms this node matches."""
        total = 0
        for term in _preferred(pod):
            if term.preference and term_matches(term.preference, node):
                total += term.weight
        return total
