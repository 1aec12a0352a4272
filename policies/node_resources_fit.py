"""NodeResourcesFit: the pod's requests must fit in what the node has left; and the two scoring
strategies kube-scheduler offers on top of it, LeastAllocated (spread) and MostAllocated (bin-packing),
which are mirror images of one formula."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import ClassVar

from kubernetes.client import V1Pod

from policies.framework import (
    MAX_SCORE,
    SUCCESS,
    CycleState,
    Key,
    NodeInfo,
    Normalize,
    Status,
    unresolvable,
    unschedulable,
)
from policies.resources import CPU, MEMORY, PODS, nonzero_requests, pod_requests

TOO_MANY_PODS = "Too many pods"

_REQUESTS: Key[list[tuple[str, int]]] = Key("NodeResourcesFit/requests", pod_only=True)
# Shared by LeastAllocated and MostAllocated: the same numbers for both.
_NONZERO_REQUESTS: Key[Counter[str]] = Key("allocation/requests", pod_only=True)


class NodeResourcesFit:
    name = "NodeResourcesFit"
    node_only: ClassVar[bool] = False

    def filter(self, pod: V1Pod, node: NodeInfo, state: CycleState) -> Status:
        """Every resource the pod is short of, not just the first (kube's fit.go does the same)."""
        requests = state.memo(_REQUESTS, lambda: sorted((r, n) for r, n in pod_requests(pod).items() if n > 0))
        allocatable, requested = node.allocatable, node.requested
        short = [
            TOO_MANY_PODS if resource == PODS else f"Insufficient {resource}"
            for resource, need in requests
            if need > allocatable.get(resource, 0) - requested.get(resource, 0)
        ]
        if not short:
            return SUCCESS
        # kube's InsufficientResource.Unresolvable: a request larger than the whole node cannot be met by evicting
        # pods, so the node is no preemption candidate; the pod count never is (noderesources/fit.go).
        for resource, need in requests:
            if need > allocatable.get(resource, 0) and resource != PODS:
                return unresolvable(*short)
        return unschedulable(*short)


def allocated_fraction(pod: V1Pod, node: NodeInfo, state: CycleState) -> float | None:
    """Mean over cpu and memory of (requested after placing the pod) / allocatable, each capped at 1; resources
    the node has none of are left out, and with neither there is nothing to score (None), as in kube.
    Written out by hand: it runs for every pod and every feasible node."""
    requests = state.memo(_NONZERO_REQUESTS, lambda: nonzero_requests(pod))
    allocatable, used = node.allocatable, node.nonzero_requested
    total, count = 0.0, 0
    for resource in (CPU, MEMORY):
        capacity = allocatable.get(resource, 0)
        if capacity > 0:
            total += min((used.get(resource, 0) + requests.get(resource, 0)) / capacity, 1.0)
            count += 1
    return total / count if count else None


def requested_fractions(
    requested: Mapping[str, int], allocatable: Mapping[str, int], resources: Sequence[str] = (CPU, MEMORY)
) -> list[float]:
    """requested / allocatable per resource, capped at 1. Resources the node has none of are left out, as
    kube's resource_allocation.go does, rather than counted as full."""
    return [min(requested.get(r, 0) / allocatable[r], 1.0) for r in resources if allocatable.get(r, 0) > 0]


class LeastAllocated:
    """Prefer the node with the most room left: the default, it spreads load."""

    name = "LeastAllocated"
    normalize = Normalize.NONE

    def score(self, pod: V1Pod, node: NodeInfo, state: CycleState) -> float:
        fraction = allocated_fraction(pod, node, state)
        return 0.0 if fraction is None else (1 - fraction) * MAX_SCORE


class MostAllocated:
    """Prefer the fullest node that still fits: bin-packing, so empty nodes can be scaled away."""

    name = "MostAllocated"
    normalize = Normalize.NONE

    def score(self, pod: V1Pod, node: NodeInfo, state: CycleState) -> float:
        fraction = allocated_fraction(pod, node, state)
        return 0.0 if fraction is None else fraction * MAX_SCORE
