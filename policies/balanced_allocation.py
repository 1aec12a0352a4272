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
from collections.abc import Mapping, Sequence

from kubernetes.client import V1Pod

from policies.framework import MAX_SCORE, BatchScore, CycleState, Key, NodeInfo, Normalize
from policies.resources import CPU, MEMORY, pod_requests

RESOURCES = (CPU, MEMORY)
_REQUESTS: Key[tuple[int, int]] = Key("NodeResourcesBalancedAllocation/requests", pod_only=True)


def _cpu_and_memory(pod: V1Pod) -> tuple[int, int]:
    requests = pod_requests(pod)
    return requests.get(CPU, 0), requests.get(MEMORY, 0)


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


class NodeResourcesBalancedAllocation(BatchScore):
    name = "NodeResourcesBalancedAllocation"
    normalize = Normalize.NONE

    def score(self, pod: V1Pod, node: NodeInfo, state: CycleState) -> float:
        return self.score_all(pod, [node], state)[0]

    def score_all(self, pod: V1Pod, nodes: Sequence[NodeInfo], state: CycleState) -> list[float]:
        cpu, memory = state.memo(_REQUESTS, lambda: _cpu_and_memory(pod))
        if not cpu and not memory:
            return [0.0] * len(nodes)
        return [_balanced(cpu, memory, node.allocatable, node.requested) for node in nodes]


def _balanced(cpu: int, memory: int, allocatable: Mapping[str, int], requested: Mapping[str, int]) -> float:
    """Written out by hand for cpu and memory: it runs for every pod and every scored node."""
    cpu_capacity, memory_capacity = allocatable.get(CPU, 0), allocatable.get(MEMORY, 0)
    cpu_used, memory_used = requested.get(CPU, 0), requested.get(MEMORY, 0)
    if cpu_capacity > 0 and memory_capacity > 0:
        cpu_after = min((cpu_used + cpu) / cpu_capacity, 1.0)
        memory_after = min((memory_used + memory) / memory_capacity, 1.0)
        with_pod = int((1 - abs(cpu_after - memory_after) / 2) * MAX_SCORE)
        cpu_before, memory_before = min(cpu_used / cpu_capacity, 1.0), min(memory_used / memory_capacity, 1.0)
        without_pod = int((1 - abs(cpu_before - memory_before) / 2) * MAX_SCORE)
    else:  # one fraction or none: no deviation, with or without the pod
        with_pod = without_pod = MAX_SCORE
    half = MAX_SCORE // 2
    change = half + with_pod - without_pod
    return float(half + (change // 2 if change >= 0 else -(-change // 2)))  # Go's division truncates
