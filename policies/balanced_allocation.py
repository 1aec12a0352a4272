"""NodeResourcesBalancedAllocation: prefer nodes whose cpu and memory stay evenly used once the pod is placed.

As kube-scheduler v1.37 computes it (noderesources/balanced_allocation.go):
- balance = (1 - standard deviation of the requested/allocatable fractions) * 100, fractions capped at 1;
- the score rewards the *change* in balance the pod brings: 50 + (50 + balance_with_pod - balance_without) / 2,
  so it stays within 50..100 (75 means "no change");
- it uses the pods' real requests, not the 100m / 200Mi scoring defaults LeastAllocated uses, and a pod that
  requests neither cpu nor memory is not scored at all (0 on every node, as kube's Skip).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from kubernetes.client import V1Pod

from policies.framework import MAX_SCORE, CycleState, Key, NodeInfo, Normalize
from policies.node_resources_fit import requested_fractions
from policies.resources import CPU, MEMORY, pod_requests

RESOURCES = (CPU, MEMORY)
_REQUESTS: Key[Counter[str]] = Key("NodeResourcesBalancedAllocation/requests")


def balance(fractions: Sequence[float]) -> int:
    """(1 - std deviation) * 100, truncated like kube's int64 conversion."""
    if len(fractions) == 2:
        std = abs(fractions[0] - fractions[1]) / 2
    elif len(fractions) > 2:
        mean = sum(fractions) / len(fractions)
        std = math.sqrt(sum((f - mean) ** 2 for f in fractions) / len(fractions))
    else:
        std = 0.0
    return int((1 - std) * MAX_SCORE)


class NodeResourcesBalancedAllocation:
    name = "NodeResourcesBalancedAllocation"
    normalize = Normalize.NONE

    def score(self, pod: V1Pod, node: NodeInfo, state: CycleState) -> float:
        requests = state.memo(_REQUESTS, lambda: pod_requests(pod))
        if not any(requests[r] for r in RESOURCES):
            return 0.0
        after = {r: node.requested[r] + requests[r] for r in RESOURCES}
        with_pod = balance(requested_fractions(after, node.allocatable, RESOURCES))
        without_pod = balance(requested_fractions(node.requested, node.allocatable, RESOURCES))
        half = MAX_SCORE // 2
        change = half + with_pod - without_pod
        return float(half + (change // 2 if change >= 0 else -(-change // 2)))  # Go's division truncates
