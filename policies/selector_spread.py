"""SelectorSpread: pods of one workload (same controller, or same `app` label) spread across nodes and,
where nodes carry `topology.kubernetes.io/zone`, across zones — kube-scheduler's former default spreading
(zone counts weigh 2/3, node counts 1/3). Like kube, it compares the nodes being scored (the feasible ones)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from kubernetes.client import V1Pod

from policies.framework import MAX_SCORE, CycleState, Key, NodeInfo, Normalize, workload

ZONE_LABEL = "topology.kubernetes.io/zone"
ZONE_WEIGHT = 2 / 3


_SPREAD: Key[_Spread] = Key("SelectorSpread/spread")


class SelectorSpread:
    name = "SelectorSpread"
    normalize = Normalize.NONE

    def score(self, pod: V1Pod, node: NodeInfo, state: CycleState) -> float:
        spread = state.memo(_SPREAD, lambda: _Spread.of(pod, state))
        if spread.key is None:
            return MAX_SCORE
        score = _emptiness(node.workloads.get(spread.key, 0), spread.node_max)
        zone = node.labels.get(ZONE_LABEL)
        if zone is None or not spread.by_zone:
            return score
        zone_score = _emptiness(spread.by_zone.get(zone, 0), spread.zone_max)
        return score * (1 - ZONE_WEIGHT) + zone_score * ZONE_WEIGHT


def _emptiness(count: int, most: int) -> float:
    return MAX_SCORE * (most - count) / most if most else MAX_SCORE


@dataclass(frozen=True, slots=True)
class _Spread:
    """The pod's workload and how its pods are spread over the scored nodes: once per pod, O(nodes)."""

    key: str | None
    node_max: int
    by_zone: Counter[str]
    zone_max: int

    @classmethod
    def of(cls, pod: V1Pod, state: CycleState) -> _Spread:
        key = workload(pod)
        if key is None:
            return cls(None, 0, Counter(), 0)
        by_zone: Counter[str] = Counter()
        node_max = 0
        for node in state.scored:
            count = node.workloads.get(key, 0)
            node_max = max(node_max, count)
            if zone := node.labels.get(ZONE_LABEL):
                by_zone[zone] += count
        return cls(key, node_max, by_zone, max(by_zone.values(), default=0))
