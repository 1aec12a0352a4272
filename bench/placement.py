"""Placement checks after a benchmark run, with no I/O: did every bound pod land on a node it may use, and how
evenly are the nodes filled? Also the tiny "does it fit" test that naive.py and raw_limit.py use to pick nodes.

The checks are deliberately independent of `policies/`: they re-derive the rules (taints, nodeSelector, required
node affinity, the sum of requests ≤ allocatable, pod count, required pod anti-affinity, DoNotSchedule topology
spread constraints) from the objects, so a bug shared by our scheduler and its policies
still shows up here. Objects come either as client models (V1Pod/V1Node) or as the API's JSON dicts; both are
reduced to the same small facts first.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from kubernetes.client import ApiClient, V1Node, V1NodeSpec, V1ObjectMeta, V1Pod, V1PodSpec
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
class Requirement:
    """One `key operator values` of a label selector or a node selector term."""

    key: str
    operator: str  # In | NotIn | Exists | DoesNotExist | Gt | Lt
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        if self.operator == "In":
            return value is not None and value in self.values
        if self.operator == "NotIn":
            return value is None or value not in self.values
        if self.operator == "Exists":
            return value is not None
        if self.operator == "DoesNotExist":
            return value is None
        if self.operator in ("Gt", "Lt") and value is not None and len(self.values) == 1:
            try:
                number, bound = int(value), int(self.values[0])
            except ValueError:
                return False
            return number > bound if self.operator == "Gt" else number < bound
        return False


@dataclass(frozen=True, slots=True)
class Selector:
    """A metav1.LabelSelector: matchLabels and matchExpressions, all must hold (an empty one matches all)."""

    match_labels: tuple[tuple[str, str], ...] = ()
    expressions: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(labels.get(k) == v for k, v in self.match_labels) and all(
            r.matches(labels) for r in self.expressions
        )


@dataclass(frozen=True, slots=True)
class NodeTerm:
    """One of requiredDuringScheduling's nodeSelectorTerms (the terms are ORed; a term without requirements
    matches no node, as kube's nodeaffinity has it)."""

    expressions: tuple[Requirement, ...] = ()
    fields: tuple[Requirement, ...] = ()  # matchFields: only metadata.name exists

    def matches(self, offer: Offer) -> bool:
        if not self.expressions and not self.fields:
            return False
        return all(r.matches(offer.labels) for r in self.expressions) and all(
            r.matches({"metadata.name": offer.name}) for r in self.fields
        )


@dataclass(frozen=True, slots=True)
class PodTerm:
    """A required pod (anti-)affinity term: pods matching `selector` in `namespaces` (empty: the pod's own),
    counted per value of `topology_key` on their nodes."""

    selector: Selector
    topology_key: str
    namespaces: tuple[str, ...] = ()

    def covers(self, owner_namespace: str, other: Needs) -> bool:
        """Is `other` one of the pods this term (of a pod in `owner_namespace`) is about?"""
        return other.namespace in (self.namespaces or (owner_namespace,)) and self.selector.matches(other.labels)


@dataclass(frozen=True, slots=True)
class SpreadConstraint:
    """A `whenUnsatisfiable: DoNotSchedule` topologySpreadConstraint (ScheduleAnyway is only a score)."""

    max_skew: int
    topology_key: str
    selector: Selector


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
    labels: Mapping[str, str] = field(default_factory=dict)
    node_affinity: tuple[NodeTerm, ...] | None = None  # required nodeSelectorTerms; None: no node affinity
    anti_affinity: tuple[PodTerm, ...] = ()  # required pod anti-affinity
    spread: tuple[SpreadConstraint, ...] = ()

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


def _requirements(items: Any) -> tuple[Requirement, ...]:
    return tuple(Requirement(r["key"], r["operator"], tuple(r.get("values") or ())) for r in items or [])


def _selector(selector: Mapping[str, Any] | None) -> Selector:
    selector = selector or {}
    return Selector(
        tuple(sorted((selector.get("matchLabels") or {}).items())), _requirements(selector.get("matchExpressions"))
    )


def _constraints(
    affinity: Mapping[str, Any] | None, spread: Iterable[Mapping[str, Any]] | None
) -> tuple[tuple[NodeTerm, ...] | None, tuple[PodTerm, ...], tuple[SpreadConstraint, ...]]:
    """The required node affinity, required pod anti-affinity and DoNotSchedule spread constraints of a pod's
    `affinity` and `topologySpreadConstraints` (API JSON)."""
    affinity = affinity or {}
    node = (affinity.get("nodeAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution")
    node_terms = None
    if node is not None:
        node_terms = tuple(
            NodeTerm(_requirements(t.get("matchExpressions")), _requirements(t.get("matchFields")))
            for t in node.get("nodeSelectorTerms") or []
        )
    anti = (affinity.get("podAntiAffinity") or {}).get("requiredDuringSchedulingIgnoredDuringExecution") or []
    pod_terms = tuple(
        PodTerm(_selector(t.get("labelSelector")), t["topologyKey"], tuple(t.get("namespaces") or ())) for t in anti
    )
    constraints = tuple(
        SpreadConstraint(c["maxSkew"], c["topologyKey"], _selector(c.get("labelSelector")))
        for c in spread or []
        if c.get("whenUnsatisfiable") == "DoNotSchedule"
    )
    return node_terms, pod_terms, constraints


def needs_of(pod: V1Pod) -> Needs:
    meta, spec = pod.metadata or V1ObjectMeta(), pod.spec or V1PodSpec(containers=[])

    def requests(containers: Any) -> list[Mapping[str, str]]:
        return [(c.resources.requests if c.resources else None) or {} for c in containers or []]

    cpu, memory = _requests(requests(spec.containers), requests(spec.init_containers))
    node_terms: tuple[NodeTerm, ...] | None = None
    pod_terms: tuple[PodTerm, ...] = ()
    constraints: tuple[SpreadConstraint, ...] = ()
    if spec.affinity or spec.topology_spread_constraints:  # rare: only then the models are turned into JSON
        sanitize: Callable[[object], Any] = ApiClient().sanitize_for_serialization
        node_terms, pod_terms, constraints = _constraints(
            sanitize(spec.affinity), sanitize(spec.topology_spread_constraints)
        )
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
        labels=dict(meta.labels or {}),
        node_affinity=node_terms,
        anti_affinity=pod_terms,
        spread=constraints,
    )


def needs_from_dict(pod: Mapping[str, Any]) -> Needs:
    meta, spec = pod["metadata"], pod["spec"]

    def requests(containers: Any) -> list[Mapping[str, str]]:
        return [c.get("resources", {}).get("requests", {}) for c in containers or []]

    cpu, memory = _requests(requests(spec.get("containers")), requests(spec.get("initContainers")))
    node_terms, pod_terms, constraints = _constraints(spec.get("affinity"), spec.get("topologySpreadConstraints"))
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
        labels=dict(meta.get("labels") or {}),
        node_affinity=node_terms,
        anti_affinity=pod_terms,
        spread=constraints,
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
    if needs.node_affinity is not None and not any(t.matches(offer) for t in needs.node_affinity):
        broken.append("required node affinity does not match")
    return broken


def fits(needs: Needs, offer: Offer, used: Usage) -> bool:
    """May the pod go there now: the rules, and room left for its requests and one more pod."""
    return (
        used.pods + 1 <= offer.pods
        and used.cpu + needs.cpu <= offer.cpu
        and used.memory + needs.memory <= offer.memory
        and not rule_breaks(needs, offer)
    )


class Occupancy:
    """The pods on the nodes, as a planner (raw-limit's round robin) or a checker needs them: requests per node,
    and the pods per topology domain (a node label's value) for required pod anti-affinity both ways: the new
    pod's terms against the pods there, and the terms of the pods there against the new pod."""

    def __init__(self, nodes: Iterable[Offer]) -> None:
        self.offers = {o.name: o for o in nodes}
        self.used: dict[str, Usage] = defaultdict(Usage)
        self._placed: list[Needs] = []
        self._by_domain: dict[str, dict[str, list[Needs]]] = {}  # topology key → value → pods, built on demand
        self._term_domains: dict[tuple[PodTerm, str], set[str]] = defaultdict(set)  # (term, owner ns) → values

    def add(self, needs: Needs, node: str) -> None:
        self.used[node].add(needs)
        self._placed.append(dataclasses.replace(needs, node_name=node) if needs.node_name != node else needs)
        labels = self.offers[node].labels if node in self.offers else {}
        for key, domains in self._by_domain.items():
            if key in labels:
                domains.setdefault(labels[key], []).append(self._placed[-1])
        for term in needs.anti_affinity:
            if term.topology_key in labels:
                self._term_domains[term, needs.namespace].add(labels[term.topology_key])

    def pods_in(self, key: str, value: str) -> list[Needs]:
        if key not in self._by_domain:
            domains: dict[str, list[Needs]] = {}
            for pod in self._placed:
                label = self.offers[pod.node_name].labels.get(key) if pod.node_name in self.offers else None
                if label is not None:
                    domains.setdefault(label, []).append(pod)
            self._by_domain[key] = domains
        return self._by_domain[key].get(value, [])

    def own_anti_affinity_breaks(self, needs: Needs, offer: Offer) -> list[str]:
        """The pod's required anti-affinity terms that pods in the offer's domains match (the pod itself aside:
        kube's InterPodAffinity only looks at other pods)."""
        broken = []
        for term in needs.anti_affinity:
            value = offer.labels.get(term.topology_key)
            if value is None:  # a node without the topology key is in no domain: nothing there to avoid
                continue
            for other in self.pods_in(term.topology_key, value):
                if (other.namespace, other.name) != (needs.namespace, needs.name) and term.covers(
                    needs.namespace, other
                ):
                    broken.append(f"pod anti-affinity: {other.ref} on {term.topology_key}={value}")
                    break
        return broken

    def anti_affinity_breaks(self, needs: Needs, offer: Offer) -> list[str]:
        """Both ways, for a pod not placed yet."""
        broken = self.own_anti_affinity_breaks(needs, offer)
        for (term, namespace), values in self._term_domains.items():
            value = offer.labels.get(term.topology_key)
            if value in values and term.covers(namespace, needs):
                broken.append(f"an existing pod's anti-affinity on {term.topology_key}={value}")
        return broken

    def fits(self, needs: Needs, offer: Offer) -> bool:
        return fits(needs, offer, self.used[offer.name]) and not self.anti_affinity_breaks(needs, offer)


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
    if any(p.anti_affinity for p in pods):
        occupancy = Occupancy(offers.values())
        for needs in pods:
            if needs.node_name in offers:
                occupancy.add(needs, needs.node_name)
        for needs in pods:
            if needs.anti_affinity and needs.node_name in offers:
                offer = offers[needs.node_name]
                found.extend(
                    f"{needs.ref} on {offer.name}: {why}" for why in occupancy.own_anti_affinity_breaks(needs, offer)
                )
    found.extend(spread_violations(pods, offers.values()))
    return found


def _eligible(needs: Needs, offer: Offer) -> bool:
    """Does the node count for the pod's spread constraints: kube's default nodeAffinityPolicy Honor (its
    nodeSelector and required node affinity), nodeTaintsPolicy Ignore."""
    return all(offer.labels.get(k) == v for k, v in needs.node_selector.items()) and (
        needs.node_affinity is None or any(t.matches(offer) for t in needs.node_affinity)
    )


def spread_violations(pods: Iterable[Needs], nodes: Iterable[Offer]) -> list[str]:
    """DoNotSchedule topology spread constraints, on the final placement: per namespace and constraint, the
    matching bound pods per domain (value of the topology key on the nodes that count) may differ by at most
    maxSkew. A scheduler that keeps each placement within maxSkew of the least-filled domain never leaves more
    (the minimum only grows), so a larger difference is a placement that broke the rule."""
    pods, offers = list(pods), list(nodes)
    found = []
    seen: set[tuple[str, SpreadConstraint, tuple[tuple[str, str], ...], tuple[NodeTerm, ...] | None]] = set()
    for needs in pods:
        for constraint in needs.spread if needs.node_name else ():
            key = (needs.namespace, constraint, tuple(sorted(needs.node_selector.items())), needs.node_affinity)
            if key in seen:
                continue
            seen.add(key)
            counting = {o.name: o.labels[constraint.topology_key] for o in offers
                        if constraint.topology_key in o.labels and _eligible(needs, o)}  # fmt: skip
            counts = Counter({value: 0 for value in counting.values()})
            for other in pods:
                if (other.namespace == needs.namespace and other.node_name in counting
                        and constraint.selector.matches(other.labels)):  # fmt: skip
                    counts[counting[other.node_name]] += 1
            if counts and (skew := max(counts.values()) - min(counts.values())) > constraint.max_skew:
                shown = ", ".join(f"{v}: {n}" for v, n in sorted(counts.items()))
                found.append(
                    f"{needs.namespace}: topology spread on {constraint.topology_key} (maxSkew "
                    f"{constraint.max_skew}) skew {skew}: {shown}"
                )
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
