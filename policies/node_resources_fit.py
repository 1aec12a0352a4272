"""NodeResourcesFit: the pod's requests must fit in what the node has left; and its score, with kube-scheduler's
three scoring strategies (noderesources/least_allocated.go, most_allocated.go, requested_to_capacity_ratio.go):
LeastAllocated (spread; kube's default, on cpu and memory with weight 1 each), MostAllocated (bin-packing) and
RequestedToCapacityRatio (a broken-line `shape` from utilisation 0..100 to score 0..10).

As kube computes it, in its integer arithmetic: per resource of the strategy the node has (allocatable > 0),
requested = what the node's pods ask + what the pod asks, where cpu and memory count 100m / 200Mi for a container
that asks for nothing (kube's NonZeroRequested), and an extended resource the pod does not ask for is left out;
the node's score is the weighted mean of the resource scores. `LeastAllocated` and `MostAllocated` are also
score policies of their own (our original names), the same formulas on cpu and memory."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from kubernetes.client import V1Pod

from policies.framework import (
    ALLOCATABLE,
    MAX_SCORE,
    NONZERO,
    REQUESTED,
    ROW_RESOURCES,
    SUCCESS,
    BatchFilter,
    BatchScore,
    CycleState,
    Key,
    NodeInfo,
    Normalize,
    Scores,
    Status,
    unresolvable,
    unschedulable,
)
from policies.node_table import Rows, ints, rows, zeros
from policies.resources import CPU, EPHEMERAL_STORAGE, MEMORY, PODS, nonzero_requests, pod_requests

TOO_MANY_PODS = "Too many pods"

_REQUESTS: Key[list[tuple[str, int]]] = Key("NodeResourcesFit/requests", pod_only=True)


LEAST_ALLOCATED, MOST_ALLOCATED, REQUESTED_TO_CAPACITY_RATIO = (
    "LeastAllocated",
    "MostAllocated",
    "RequestedToCapacityRatio",
)
MAX_UTILIZATION = 100
MAX_CUSTOM_SCORE = 10  # a shape's scores are 0..10, scaled to 0..100 (kube's MaxCustomPriorityScore)


@dataclass(frozen=True, slots=True)
class ScoringStrategy:
    """kube's ScoringStrategy: a type, the resources with their weights, and for RequestedToCapacityRatio the
    shape as (utilization 0..100, score 0..10) points in increasing utilisation."""

    type: str = LEAST_ALLOCATED
    resources: tuple[tuple[str, int], ...] = ((CPU, 1), (MEMORY, 1))
    shape: tuple[tuple[int, int], ...] = ()


def _go_div(a: int, b: int) -> int:
    """Go's integer division: truncates toward zero (Python's // floors)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def broken_linear(shape: Sequence[tuple[int, int]]) -> Callable[[int], int]:
    """kube's helper.BuildBrokenLinearFunction over (utilization, score 0..100) points."""

    def score(p: int) -> int:
        for i, (utilization, value) in enumerate(shape):
            if p <= utilization:
                if i == 0:
                    return value
                u0, s0 = shape[i - 1]
                return s0 + _go_div((value - s0) * (p - u0), utilization - u0)
        return shape[-1][1]

    return score


class NodeResourcesFit(BatchScore, BatchFilter):
    name = "NodeResourcesFit"
    node_only: ClassVar[bool] = False
    normalize = Normalize.NONE

    def __init__(self, strategy: ScoringStrategy | None = None) -> None:
        self.strategy = strategy or ScoringStrategy()
        self._requests: Key[list[tuple[str, int, int, bool]]] = Key(f"{self.name}/score requests")
        # RequestedToCapacityRatio's score for each utilisation 0..100 (its shape, kube's broken line).
        line = broken_linear([(u, v * (MAX_SCORE // MAX_CUSTOM_SCORE)) for u, v in self.strategy.shape or ((0, 0),)])
        self._shape = np.array([line(p) for p in range(MAX_UTILIZATION + 1)], dtype=np.int64)

    def score(self, pod: V1Pod, node: NodeInfo, state: CycleState) -> float:
        """kube's resourceAllocationScorer with the strategy's scorer (see the module docstring)."""
        return float(self.score_all(pod, [node], state)[0])

    def score_all(self, pod: V1Pod, nodes: Sequence[NodeInfo], state: CycleState) -> Scores:
        """Every scored node at once, resource by resource, in kube's int64 arithmetic."""
        wanted = state.memo(self._requests, lambda: _score_requests(pod, self.strategy.resources))
        kind = self.strategy.type
        table = rows(nodes, state)
        total, weights = zeros(len(nodes), np.int64), zeros(len(nodes), np.int64)
        for resource, weight, need, scoring_default in wanted:
            capacity, used = _columns(nodes, table, resource, NONZERO if scoring_default else REQUESTED)
            used = used + need
            counted = capacity > 0  # a resource the node has none of is left out
            capacity = np.where(counted, capacity, 1)
            # Each resource's score is 0..100: int64 from here on, whatever the quantities were.
            if kind == LEAST_ALLOCATED:
                least = np.where(used > capacity, 0, (capacity - used) * MAX_SCORE // capacity)
                resource_score = least.astype(np.int64)
            elif kind == MOST_ALLOCATED:
                resource_score = (np.minimum(used, capacity) * MAX_SCORE // capacity).astype(np.int64)
            else:
                utilization = np.where(used > capacity, MAX_UTILIZATION, used * MAX_UTILIZATION // capacity)
                resource_score = self._shape[np.minimum(utilization, MAX_UTILIZATION).astype(np.int64)]
                counted &= resource_score > 0  # kube's RequestedToCapacityRatio counts only resources that score
            total += np.where(counted, resource_score * weight, 0)
            weights += np.where(counted, weight, 0)
        scored = weights > 0
        if kind == REQUESTED_TO_CAPACITY_RATIO:  # Go's math.Round: half away from zero
            mean = np.floor(total / np.where(scored, weights, 1) + 0.5)
        else:
            mean = (total // np.where(scored, weights, 1)).astype(np.float64)
        return np.where(scored, mean, 0.0)

    def filter(self, pod: V1Pod, node: NodeInfo, state: CycleState) -> Status:
        """Every resource the pod is short of, not just the first (kube's fit.go does the same)."""
        requests = state.memo(_REQUESTS, lambda: _fit_requests(pod))
        allocatable, requested = node.allocatable, node.requested
        short = [
            TOO_MANY_PODS if resource == PODS else f"Insufficient {resource}"
            for resource, need in requests
            if _short(need, allocatable.get(resource, 0), requested.get(resource, 0))
        ]
        if not short:
            return SUCCESS
        # kube's InsufficientResource.Unresolvable: a request larger than the whole node cannot be met by evicting
        # pods, so the node is no preemption candidate; the pod count never is (noderesources/fit.go).
        for resource, need in requests:
            if need > allocatable.get(resource, 0) and resource != PODS:
                return unresolvable(*short)
        return unschedulable(*short)

    def filter_all(self, pod: V1Pod, nodes: Sequence[NodeInfo], state: CycleState) -> npt.NDArray[np.bool_]:
        """`filter`'s verdict for every node at once: whether it passes."""
        table = rows(nodes)
        passes = np.ones(len(nodes), dtype=np.bool_)
        for resource, need in state.memo(_REQUESTS, lambda: _fit_requests(pod)):
            passes &= ~_short(need, *_columns(nodes, table, resource))
        return passes


def _columns(
    nodes: Sequence[NodeInfo], table: Rows, resource: str, used_from: int = REQUESTED
) -> tuple[npt.NDArray[Any], npt.NDArray[Any]]:
    """What the nodes have of `resource` and what their pods request (`used_from`: REQUESTED, or NONZERO for
    cpu and memory with the scoring defaults), as arrays: from the rows (`table`) for the resources they hold,
    other resources read node by node."""
    if resource in ROW_RESOURCES:
        i = ROW_RESOURCES.index(resource)
        return table[ALLOCATABLE + i], table[used_from + i]
    return ints([n.allocatable.get(resource, 0) for n in nodes]), ints([n.requested.get(resource, 0) for n in nodes])


def _short(need: int, allocatable: Any, requested: Any) -> Any:
    """Whether a node is short of a resource: for one node (ints) or many (arrays) alike."""
    return need > allocatable - requested


def _fit_requests(pod: V1Pod) -> list[tuple[str, int]]:
    return sorted((r, n) for r, n in pod_requests(pod).items() if n > 0)


def _score_requests(pod: V1Pod, resources: Sequence[tuple[str, int]]) -> list[tuple[str, int, int, bool]]:
    """(resource, weight, what the pod asks, whether the scoring defaults apply) for each scored resource: cpu
    and memory count 100m / 200Mi for containers without requests, on the pod and on the node (kube's
    NonZeroRequested); an extended resource the pod does not ask for is left out, as kube does."""
    nonzero, real = nonzero_requests(pod), pod_requests(pod)
    out = []
    for resource, weight in resources:
        scoring_default = resource in (CPU, MEMORY)
        need = (nonzero if scoring_default else real).get(resource, 0)
        if need == 0 and resource not in (CPU, MEMORY, EPHEMERAL_STORAGE):
            continue
        out.append((resource, weight, need, scoring_default))
    return out


class LeastAllocated(NodeResourcesFit):
    """Prefer the node with the most room left: it spreads load (NodeResourcesFit's LeastAllocated)."""

    name = "LeastAllocated"

    def __init__(self) -> None:
        super().__init__(ScoringStrategy(LEAST_ALLOCATED))


class MostAllocated(NodeResourcesFit):
    """Prefer the fullest node that still fits: bin-packing, so empty nodes can be scaled away."""

    name = "MostAllocated"

    def __init__(self) -> None:
        super().__init__(ScoringStrategy(MOST_ALLOCATED))
