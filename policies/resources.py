"""Resource arithmetic as kube-scheduler does it: exact quantities, init/sidecar containers, overhead.

CPU is counted in millicores, everything else in whole units (bytes for memory and storage), rounded up
like kube's `MilliValue()`/`Value()`.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from decimal import Decimal
from functools import lru_cache

from kubernetes.client import V1Container, V1Node, V1Pod
from kubernetes.utils import parse_quantity

Resources = Counter[str]

CPU, MEMORY, PODS, EPHEMERAL_STORAGE = "cpu", "memory", "pods", "ephemeral-storage"
# kube-scheduler's scoring defaults for containers without requests (pkg/scheduler/util/pod_resources.go).
DEFAULT_MILLI_CPU = 100
DEFAULT_MEMORY = 200 * 1024 * 1024


@lru_cache(maxsize=4096)
def quantity(resource: str, value: str) -> int:
    """Parse a Kubernetes quantity exactly; CPU in millicores. Raises ValueError for a malformed one."""
    parsed: Decimal = parse_quantity(value)
    return math.ceil(parsed * 1000) if resource == CPU else math.ceil(parsed)


def parse_resources(values: Mapping[str, object] | None) -> Resources:
    return Counter({name: quantity(name, str(v)) for name, v in (values or {}).items()})


def _requests(container: V1Container) -> Resources:
    return parse_resources(container.resources.requests if container.resources else None)


def _nonzero(requests: Resources) -> Resources:
    # kube's applyNonMissing: only a *missing* request gets the default; an explicit 0 stays 0.
    return Counter({CPU: requests.get(CPU, DEFAULT_MILLI_CPU), MEMORY: requests.get(MEMORY, DEFAULT_MEMORY)})


def _max(a: Resources, b: Resources) -> Resources:
    return Counter({k: max(a[k], b[k]) for k in a.keys() | b.keys()})


def _aggregate(pod: V1Pod, per_container: Iterable[Resources], per_init: Iterable[tuple[Resources, bool]]) -> Resources:
    """kube's AggregateContainerRequests: regular containers add up; each init container runs alone beside
    the sidecars started before it; sidecars (restartPolicy Always) also run beside the regular containers."""
    total: Resources = Counter()
    for r in per_container:
        total.update(r)
    sidecars: Resources = Counter()
    init_peak: Resources = Counter()
    for r, is_sidecar in per_init:
        if is_sidecar:
            total.update(r)
            sidecars.update(r)
            init_peak = _max(init_peak, sidecars)
        else:
            init_peak = _max(init_peak, r + sidecars)
    total = _max(total, init_peak)
    # Pod-level requests (spec.resources) replace the containers' sum for the resources they may set
    # (component-helpers' PodRequests: cpu, memory, hugepages-*); overhead comes on top of either.
    pod_level = pod.spec.resources.requests if pod.spec and pod.spec.resources else None
    for name, value in parse_resources(pod_level).items():
        if name in (CPU, MEMORY) or name.startswith("hugepages-"):
            total[name] = value
    total.update(parse_resources(pod.spec.overhead if pod.spec else None))
    return +total


def _is_sidecar(container: V1Container) -> bool:
    return container.restart_policy == "Always"


def pod_requests(pod: V1Pod) -> Resources:
    """What the pod takes from a node, as NodeResourcesFit counts it (plus one pod)."""
    spec = pod.spec
    containers = spec.containers or [] if spec else []
    inits = (spec.init_containers or []) if spec else []
    total = _aggregate(pod, (_requests(c) for c in containers), ((_requests(c), _is_sidecar(c)) for c in inits))
    total[PODS] = 1
    return total


def nonzero_requests(pod: V1Pod) -> Resources:
    """CPU and memory for scoring: containers without requests count as 100m / 200Mi."""
    spec = pod.spec
    containers = spec.containers or [] if spec else []
    inits = (spec.init_containers or []) if spec else []
    return _aggregate(
        pod,
        (_nonzero(_requests(c)) for c in containers),
        ((_nonzero(_requests(c)), _is_sidecar(c)) for c in inits),
    )


def allocatable(node: V1Node) -> Resources:
    status = node.status
    return parse_resources((status.allocatable or status.capacity) if status else None)


def host_ports(pod: V1Pod) -> set[tuple[str, str, int]]:
    """(hostIP, protocol, hostPort) for every container port that claims a port on the node: regular containers
    and sidecars; a regular init container has exited before the pod runs (kube's GetHostPorts)."""
    spec = pod.spec
    sidecars = [c for c in spec.init_containers or [] if _is_sidecar(c)] if spec else []
    containers = [*sidecars, *(spec.containers or [])] if spec else []
    return {
        (p.host_ip or "0.0.0.0", p.protocol or "TCP", p.host_port)
        for c in containers
        for p in c.ports or []
        if p.host_port
    }
