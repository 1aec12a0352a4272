"""TaintToleration: a pod may only land on nodes whose NoSchedule/NoExecute taints it tolerates;
PreferNoSchedule taints it does not tolerate lower the node's score."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from kubernetes.client import V1Pod, V1Taint, V1Toleration

from policies.framework import (
    MAX_SCORE,
    SUCCESS,
    CycleState,
    Key,
    NodeInfo,
    Normalize,
    Status,
    UniformScore,
    unresolvable,
)
from policies.node_table import PREFER_NO_SCHEDULE, nodes_with

UNTOLERATED = "node(s) had untolerated taint {{{key}: {value}}}"
FILTERED_EFFECTS = ("NoSchedule", "NoExecute")
_SOFT: Key[bool] = Key("TaintToleration/any PreferNoSchedule taint")


def tolerates(toleration: V1Toleration, taint: V1Taint) -> bool:
    """kube's Toleration.ToleratesTaint: empty effect matches all effects, empty key with Exists matches all
    keys, the operator defaults to Equal."""
    if toleration.effect and toleration.effect != taint.effect:
        return False
    if toleration.key != taint.key and not (not toleration.key and toleration.operator == "Exists"):
        return False
    if toleration.operator == "Exists":
        return True
    if toleration.operator in (None, "", "Equal"):
        return (toleration.value or "") == (taint.value or "")
    return False


def tolerated(pod: V1Pod, taint: V1Taint) -> bool:
    return any(tolerates(t, taint) for t in (pod.spec.tolerations if pod.spec else None) or [])


def untolerated(pod: V1Pod, node_taints: Iterable[V1Taint], effects: Iterable[str]) -> list[V1Taint]:
    wanted = set(effects)
    return [t for t in node_taints if t.effect in wanted and not tolerated(pod, t)]


def untolerated_reason(taint: V1Taint) -> str:
    return UNTOLERATED.format(key=taint.key, value=taint.value or "")


class TaintToleration(UniformScore):
    name = "TaintToleration"
    node_only: ClassVar[bool] = True  # reads only the pod's spec and the node object (FilterCache)
    normalize = Normalize.REVERSE

    def filter(self, pod: V1Pod, node: NodeInfo, state: CycleState) -> Status:
        # kube reports the first untolerated taint only; so do we, to keep its message.
        bad = untolerated(pod, node.taints, FILTERED_EFFECTS)
        # Unresolvable: evicting pods does not remove a taint (tainttoleration/taint_toleration.go).
        return unresolvable(untolerated_reason(bad[0])) if bad else SUCCESS

    def uniform_score(self, pod: V1Pod, state: CycleState) -> float | None:
        """Every node scores 100 when no node has a PreferNoSchedule taint (the common case)."""
        soft = state.memo(_SOFT, lambda: bool(nodes_with(PREFER_NO_SCHEDULE, state.nodes)))
        return None if soft else MAX_SCORE

    def score(self, pod: V1Pod, node: NodeInfo, state: CycleState) -> float:
        """The number of PreferNoSchedule taints the pod does not tolerate (fewer is better)."""
        return len(untolerated(pod, node.taints, ("PreferNoSchedule",)))
