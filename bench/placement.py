"""Placement checks after a benchmark run, with no I/O: did every bound pod land on a node it may use, and how
evenly are the nodes filled? Also the tiny "does it fit" test that naive.py and raw_limit.py use to pick nodes.

The checks are deliberately independent of `policies/`: they re-derive the rules (taints, nodeSelector, the sum
of requests ≤ allocatable, pod count) from the objects, so a bug shared by our scheduler and its policies
still shows up here. Objects come either as client models (V1Pod/V1Node) or as the API's JSON dicts; both are
reduced to the same small facts first.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from kubernetes.client import V1Node, V1NodeSpec, V1ObjectMeta, V1Pod, V1PodSpec
from kubernetes.utils import parse_quantity

FILTERED_EFFECTS = ("NoSchedule", "NoExecute")  # PreferNoSchedule only lowers a score


@lru_cache(maxsize=4096)
def milli(quantity: str) -> int:
    """A CPU quantity in millicores (`250m`, `1`, `1.5`)."""
    return int(parse_quantity(quantity) * 1000)


@lru_cache(maxsize=4096)
def units(quantity: str) -> int:
    """A memory/count quantity in whole units (`512Mi`, `1Gi`, `110`)."""
    return int(parse_quantity(quantity))


@dataclass(frozen=True, slots=True)
class Toleration:
    key: str = ""
    operator: str = "Equal"
    value: str = ""
    effect: str = ""

    def tolerates(self, taint: Taint) -> bool:
        if self.effect and self.effect != taint.effect:
            return False
        if self.operator == "Exists":
            return not self.key or self.key == taint.key  # an empty key with Exists tolerates every taint
        return self.key == taint.key and self.value == taint.value


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    value: str
    effect: str


@dataclass(frozen=True, slots=True)
class Needs:
    """What one pod asks of a node."""

    namespace: str
    name: str
    node_name: str
    cpu: int  # millicores
    memory: int  # bytes
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class Offer:
    """What one node has to give."""

    name: str
    cpu: int
    memory: int
    pods: int
    labels: Mapping[str, str] = field(default_factory=dict)
    taints: tuple[Taint, ...] = ()
    unschedulable: bool = False


@dataclass(slots=True)
class Usage:
    cpu: int = 0
    memory: int = 0
    pods: int = 0

    def add(self, needs: Needs) -> None:
        self.cpu += needs.cpu
        self.memory += needs.memory
        self.pods += 1


# --- objects → facts ---------------------------------------------------------------------------------


def _requests(containers: Iterable[Mapping[str, str]], init: Iterable[Mapping[str, str]]) -> tuple[int, int]:
    """Sum over containers, at least each init container's own request (kube's rule, without sidecars)."""
    cpu = memory = 0
    for requests in containers:
        cpu += milli(requests.get("cpu", "0"))
        memory += units(requests.get("memory", "0"))
    for requests in init:
        cpu = max(cpu, milli(requests.get("cpu", "0")))
        memory = max(memory, units(requests.get("memory", "0")))
    return cpu, memory


def needs_of(pod: V1Pod) -> Needs:
    meta, spec = pod.metadata or V1ObjectMeta(), pod.spec or V1PodSpec(containers=[])

    def requests(containers: Any) -> list[Mapping[str, str]]:
        return [(c.resources.requests if c.resources else None) or {} for c in containers or []]

    cpu, memory = _requests(requests(spec.containers), requests(spec.init_containers))
    return Needs(
        namespace=meta.namespace or "",
        name=meta.name or "",
        node_name=spec.node_name or "",
        cpu=cpu,
        memory=memory,
        node_selector=dict(spec.node_selector or {}),
        tolerations=tuple(
            Toleration(t.key or "", t.operator or "Equal", t.value or "", t.effect or "")
            for t in spec.tolerations or []
        ),
    )


def needs_from_dict(pod: Mapping[str, Any]) -> Needs:
    meta, spec = pod["metadata"], pod["spec"]

    def requests(containers: Any) -> list[Mapping[str, str]]:
        return [c.get("resources", {}).get("requests", {}) for c in containers or []]

    cpu, memory = _requests(requests(spec.get("containers")), requests(spec.get("initContainers")))
    return Needs(
        namespace=meta.get("namespace", ""),
        name=meta["name"],
        node_name=spec.get("nodeName", ""),
        cpu=cpu,
        memory=memory,
        node_selector=dict(spec.get("nodeSelector") or {}),
        tolerations=tuple(
            Toleration(t.get("key", ""), t.get("operator", "Equal"), t.get("value", ""), t.get("effect", ""))
            for t in spec.get("tolerations") or []
        ),
    )


def offer_of(node: V1Node) -> Offer:
    allocatable = (node.status.allocatable if node.status else None) or {}
    meta, spec = node.metadata or V1ObjectMeta(), node.spec or V1NodeSpec()
    return Offer(
        name=meta.name or "",
        cpu=milli(allocatable.get("cpu", "0")),
        memory=units(allocatable.get("memory", "0")),
        pods=units(allocatable.get("pods", "0")),
        labels=dict(meta.labels or {}),
        taints=tuple(Taint(t.key, t.value or "", t.effect) for t in spec.taints or []),
        unschedulable=bool(spec.unschedulable),
    )


def offer_from_dict(node: Mapping[str, Any]) -> Offer:
    allocatable = node.get("status", {}).get("allocatable", {})
    spec = node.get("spec", {})
    return Offer(
        name=node["metadata"]["name"],
        cpu=milli(allocatable.get("cpu", "0")),
        memory=units(allocatable.get("memory", "0")),
        pods=units(allocatable.get("pods", "0")),
        labels=dict(node["metadata"].get("labels") or {}),
        taints=tuple(Taint(t["key"], t.get("value", ""), t["effect"]) for t in spec.get("taints") or []),
        unschedulable=bool(spec.get("unschedulable")),
    )


# --- rules ---------------------------------------------------------------------------------------------


def rule_breaks(needs: Needs, offer: Offer) -> list[str]:
    """Why this pod may not be on this node at all, capacity aside (empty: it may)."""
    broken = []
    if offer.unschedulable:
        broken.append("node is unschedulable (cordoned)")
    for taint in offer.taints:
        if taint.effect in FILTERED_EFFECTS and not any(t.tolerates(taint) for t in needs.tolerations):
            broken.append(f"untolerated taint {{{taint.key}: {taint.value}}}:{taint.effect}")
    for key, value in needs.node_selector.items():
        if offer.labels.get(key) != value:
            broken.append(f"nodeSelector {key}={value} does not match")
    return broken


def fits(needs: Needs, offer: Offer, used: Usage) -> bool:
    """May the pod go there now: the rules, and room left for its requests and one more pod."""
    return (
        used.pods + 1 <= offer.pods
        and used.cpu + needs.cpu <= offer.cpu
        and used.memory + needs.memory <= offer.memory
        and not rule_breaks(needs, offer)
    )


def usage_by_node(pods: Iterable[Needs]) -> dict[str, Usage]:
    used: dict[str, Usage] = {}
    for needs in pods:
        if needs.node_name:
            used.setdefault(needs.node_name, Usage()).add(needs)
    return used


def violations(pods: Iterable[Needs], nodes: Iterable[Offer]) -> list[str]:
    """Every broken rule among the bound pods: one line per pod and rule, one per over-committed node and
    resource. A correct scheduler leaves this empty."""
    pods = list(pods)
    offers = {o.name: o for o in nodes}
    found = []
    for needs in pods:
        if not needs.node_name:
            continue
        offer = offers.get(needs.node_name)
        if offer is None:
            found.append(f"{needs.ref}: bound to unknown node {needs.node_name}")
            continue
        found.extend(f"{needs.ref} on {offer.name}: {why}" for why in rule_breaks(needs, offer))
    for name, used in sorted(usage_by_node(pods).items()):
        offer = offers.get(name)
        if offer is None:
            continue
        for resource, requested, allocatable in (
            ("cpu", used.cpu, offer.cpu),
            ("memory", used.memory, offer.memory),
            ("pods", used.pods, offer.pods),
        ):
            if requested > allocatable:
                found.append(f"{name}: {resource} requested {requested} > allocatable {allocatable}")
    return found


@dataclass(frozen=True, slots=True)
class Spread:
    """How evenly the requested CPU is spread, in percentage points of each node's allocatable CPU."""

    stdev: float
    max_minus_min: float
    mean: float


def cpu_spread(pods: Iterable[Needs], nodes: Iterable[Offer]) -> Spread:
    used = usage_by_node(pods)
    fractions = [100.0 * used.get(o.name, Usage()).cpu / o.cpu for o in nodes if o.cpu > 0]
    if not fractions:
        return Spread(0.0, 0.0, 0.0)
    return Spread(
        stdev=statistics.pstdev(fractions),
        max_minus_min=max(fractions) - min(fractions),
        mean=statistics.fmean(fractions),
    )
