"""SelectorSpread: pods of one workload (same controller, or same `app` label) spread across nodes and,
where nodes carry `topology.kubernetes.io/zone`, across zones — kube-scheduler's former default spreading
(zone counts weigh 2/3, node counts 1/3)."""

from __future__ import annotations

from collections import Counter

from kubernetes.client import V1Pod

from policies.framework import MAX_SCORE, CycleState, NodeInfo, Normalize, workload

ZONE_LABEL = "topology.kubernetes.io/zone"
ZONE_WEIGHT = 2 / 3


class SelectorSpread:
    name = "SelectorSpread"
    normalize = Normalize.NONE

    def score(self, pod: V1Pod, node: NodeInfo, state: CycleState) -> float:
        key = workload(pod)
        if key is None:
            return MAX_SCORE
        by_node, by_zone = state.memo(f"{self.name}/counts", lambda: _counts(key, state))
        node_max = max(by_node.values(), default=0)
        score = MAX_SCORE * (node_max - node.workloads[key]) / node_max if node_max else MAX_SCORE
        zone = node.labels.get(ZONE_LABEL)
        if zone is None or not by_zone:
            return score
        zone_max = max(by_zone.values())
        zone_score = MAX_SCORE * (zone_max - by_zone[zone]) / zone_max if zone_max else MAX_SCORE
        return score * (1 - ZONE_WEIGHT) + zone_score * ZONE_WEIGHT


def _counts(key: str, state: CycleState) -> tuple[Counter[str], Counter[str]]:
    by_node: Counter[str] = Counter()
    by_zone: Counter[str] = Counter()
    for node in state.nodes:
        count = node.workloads[key]
        by_node[node.name] = count
        if zone := node.labels.get(ZONE_LABEL):
            by_zone[zone] += count
    return by_node, by_zone
