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
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from kubernetes.client import V1Pod

from policies.framework import (
    ALLOCATABLE,
    MAX_SCORE,
    REQUESTED,
    BatchScore,
    CycleState,
    Key,
    NodeInfo,
    Normalize,
    Scores,
)
from policies.node_table import rows, zeros
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
        return float(self.score_all(pod, [node], state)[0])

    def score_all(self, pod: V1Pod, nodes: Sequence[NodeInfo], state: CycleState) -> Scores:
        """Every scored node at once, in kube's arithmetic (float64 fractions, truncation to int64)."""
        cpu, memory = state.memo(_REQUESTS, lambda: _cpu_and_memory(pod))
        if not cpu and not memory:
            return zeros(len(nodes))
        table = rows(nodes, state)
        cpu_capacity, memory_capacity = table[ALLOCATABLE], table[ALLOCATABLE + 1]
        cpu_used, memory_used = table[REQUESTED], table[REQUESTED + 1]
        both = (cpu_capacity > 0) & (memory_capacity > 0)  # else one fraction or none: no deviation either way
        cpu_capacity, memory_capacity = np.where(both, cpu_capacity, 1), np.where(both, memory_capacity, 1)

        def balanced(cpu_requested: Column, memory_requested: Column) -> Column:
            cpu_fraction = np.minimum(cpu_requested / cpu_capacity, 1.0)
            memory_fraction = np.minimum(memory_requested / memory_capacity, 1.0)
            balance = ((1 - np.abs(cpu_fraction - memory_fraction) / 2) * MAX_SCORE).astype(np.int64)
            return np.where(both, balance, MAX_SCORE)

        half = MAX_SCORE // 2
        change = half + balanced(cpu_used + cpu, memory_used + memory) - balanced(cpu_used, memory_used)
        halved = np.where(change >= 0, change // 2, -(-change // 2))  # Go's division truncates
        return (half + halved).astype(np.float64)


Column = npt.NDArray[Any]
