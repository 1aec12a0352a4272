"""The scheduling framework: statuses, the per-node view, plugin protocols, and running them.

Modelled on kube-scheduler's framework, kept tiny: a plugin has a name; Filter and Score are separate
capabilities; scores are normalised to 0..100 by one shared helper, then weighted and summed.
Nothing here does I/O.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from kubernetes.client import V1Node, V1Pod, V1Taint

from policies.resources import (
    Resources,
    allocatable,
    host_ports,
    nonzero_requests,
    pod_requests,
)

MAX_SCORE = 100


class Code(enum.Enum):
    SUCCESS = "Success"
    UNSCHEDULABLE = "Unschedulable"


@dataclass(frozen=True, slots=True)
class Status:
    code: Code = Code.SUCCESS
    reasons: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.code is Code.SUCCESS


def unschedulable(*reasons: str) -> Status:
    return Status(Code.UNSCHEDULABLE, reasons)


SUCCESS = Status()


@dataclass(slots=True)
class NodeInfo:
    """A node and what the pods assigned to it already take (kube-scheduler's NodeInfo)."""

    node: V1Node
    pods: list[V1Pod] = field(default_factory=list)
    requested: Resources = field(default_factory=Counter)
    # Requests with kube's scoring defaults (100m CPU / 200Mi) for containers that ask for nothing.
    nonzero_requested: Resources = field(default_factory=Counter)
    used_ports: set[tuple[str, str, int]] = field(default_factory=set)
    # How many pods of each workload (see `workload()`) run here: kept up to date so spreading is O(nodes).
    workloads: Counter[str] = field(default_factory=Counter)
    # Pods with required anti-affinity (kube's PodsWithRequiredAntiAffinity): every pod being scheduled must be
    # checked against their terms, and scanning all pods for them would make that O(pods) per pod.
    anti_affinity_pods: list[V1Pod] = field(default_factory=list)
    # Read once from the node object: filters and scores ask for these for every pod.
    allocatable: Resources = field(init=False)
    name: str = field(init=False)
    labels: Mapping[str, str] = field(init=False)
    taints: list[V1Taint] = field(init=False)
    ready: str | None = field(init=False)  # the Ready condition's status, None when there is none

    def __post_init__(self) -> None:
        meta, spec, status = self.node.metadata, self.node.spec, self.node.status
        self.allocatable = allocatable(self.node)
        self.name = str(meta.name) if meta else ""
        self.labels = (meta.labels if meta else None) or {}
        self.taints = list((spec.taints if spec else None) or [])
        conditions = (status.conditions if status else None) or []
        self.ready = next((c.status for c in conditions if c.type == "Ready"), None)
        pods, self.pods = self.pods, []
        for pod in pods:
            self.add_pod(pod)

    def add_pod(self, pod: V1Pod) -> None:
        self.pods.append(pod)
        self.requested.update(pod_requests(pod))
        self.nonzero_requested.update(nonzero_requests(pod))
        self.used_ports.update(host_ports(pod))
        if key := workload(pod):
            self.workloads[key] += 1
        affinity = pod.spec.affinity if pod.spec else None
        if (
            affinity
            and affinity.pod_anti_affinity
            and affinity.pod_anti_affinity.required_during_scheduling_ignored_during_execution
        ):
            self.anti_affinity_pods.append(pod)


def workload(pod: V1Pod) -> str | None:
    """What a pod belongs to, for spreading: its controller (a ReplicaSet, a StatefulSet, a Job…),
    else its `app` label; None for a lone pod."""
    meta = pod.metadata
    if meta is None:
        return None
    owner = next((o for o in meta.owner_references or [] if o.controller), None)
    if owner is not None:
        return f"owner/{owner.uid}"
    app = (meta.labels or {}).get("app")
    return f"{meta.namespace}/app={app}" if app else None


def snapshot(nodes: Iterable[V1Node], assigned: Iterable[V1Pod]) -> list[NodeInfo]:
    """The nodes, sorted by name, each with the pods assigned to it."""
    infos = {info.name: info for info in (NodeInfo(n) for n in nodes)}
    for pod in assigned:
        info = infos.get(str(pod.spec.node_name) if pod.spec else "")
        if info is not None:
            info.add_pod(pod)
    return sorted(infos.values(), key=lambda n: n.name)


_T = TypeVar("_T")


class CycleState:
    """Per-pod scratch space, so a plugin computes cluster-wide facts once per pod, not once per node."""

    def __init__(self, nodes: Sequence[NodeInfo]) -> None:
        self.nodes = nodes
        self.scored: Sequence[NodeInfo] = nodes  # the feasible nodes, once filtering is done
        self._memo: dict[str, object] = {}

    def memo(self, key: str, compute: Callable[[], _T]) -> _T:
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]  # type: ignore[return-value]


class FilterPlugin(Protocol):
    """Optionally also `skips(pod, state) -> bool`: True when the filter passes every node for this pod (kube's
    PreFilter Skip), so it is not run per node; and `node_only = True` (see FilterCache)."""

    name: str

    def filter(self, pod: V1Pod, node: NodeInfo, state: CycleState) -> Status: ...


class Normalize(enum.Enum):
    NONE = "none"  # raw score is already 0..100
    MAX = "max"  # the highest raw score becomes 100
    REVERSE = "reverse"  # the highest raw score becomes 0, a raw 0 becomes 100


class ScorePlugin(Protocol):
    """Optionally also `uniform_score(pod, state) -> float | None`: the normalised score every node gets when
    the plugin has nothing to tell nodes apart for this pod (kube's PreScore Skip), else None."""

    name: str
    normalize: Normalize

    def score(self, pod: V1Pod, node: NodeInfo, state: CycleState) -> float: ...


def normalise(scores: Sequence[float], mode: Normalize) -> list[float]:
    """kube's DefaultNormalizeScore: scale so the best raw score maps to MAX_SCORE."""
    if mode is Normalize.NONE:
        return [float(s) for s in scores]
    top = max(scores, default=0)
    if top <= 0:
        return [float(MAX_SCORE) if mode is Normalize.REVERSE else 0.0 for _ in scores]
    scaled = [s * MAX_SCORE / top for s in scores]
    return [MAX_SCORE - s for s in scaled] if mode is Normalize.REVERSE else scaled


@dataclass(frozen=True, slots=True)
class Profile:
    """One scheduler name with its filters and weighted score plugins (a kube-scheduler profile)."""

    scheduler_name: str
    filters: tuple[FilterPlugin, ...]
    scores: tuple[tuple[ScorePlugin, int], ...]


def run_filters(profile: Profile, pod: V1Pod, node: NodeInfo, state: CycleState) -> dict[str, Status]:
    """Every filter's verdict for one node: all of them, so that every failing reason can be shown."""
    return {plugin.name: plugin.filter(pod, node, state) for plugin in profile.filters}


def run_scores(
    profile: Profile, pod: V1Pod, nodes: Sequence[NodeInfo], state: CycleState
) -> tuple[list[float], dict[str, list[float]]]:
    """Weighted totals per node, and each plugin's normalised (unweighted) scores for `explain`."""
    state.scored = nodes
    totals = [0.0] * len(nodes)
    per_plugin: dict[str, list[float]] = {}
    for plugin, weight in profile.scores:
        uniform = getattr(plugin, "uniform_score", None)
        same = uniform(pod, state) if uniform else None
        if same is not None:
            normalised = [float(same)] * len(nodes)
        else:
            normalised = normalise([plugin.score(pod, n, state) for n in nodes], plugin.normalize)
        if any(not 0 <= s <= MAX_SCORE for s in normalised):
            raise ValueError(f"plugin {plugin.name} returned a score outside 0..{MAX_SCORE}")
        per_plugin[plugin.name] = normalised
        totals = [t + weight * s for t, s in zip(totals, normalised, strict=True)]
    return totals, per_plugin


def reasons(verdicts: Mapping[str, Status]) -> list[str]:
    return [r for status in verdicts.values() for r in status.reasons]


def failure_message(node_count: int, reasons_per_node: Iterable[Iterable[str]]) -> str:
    """kube-scheduler's FitError text: `0/3 nodes are available: 1 <reason>, 2 <reason>.`"""
    histogram = Counter(r for node_reasons in reasons_per_node for r in set(node_reasons))
    parts = sorted(f"{count} {reason}" for reason, count in histogram.items())
    if node_count == 0:
        return "no nodes available to schedule pods"
    return f"0/{node_count} nodes are available: {', '.join(parts)}."


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of scheduling one pod: a node, or the reasons no node fits (per node name)."""

    node: str | None
    message: str
    verdicts: dict[str, dict[str, Status]]
    totals: dict[str, float]
    scores: dict[str, dict[str, float]]


def nodes_to_find(total: int, percentage: int = 0) -> int:
    """kube-scheduler's numFeasibleNodesToFind: in big clusters stop after enough feasible nodes."""
    if total < 100 or percentage >= 100:
        return total
    if percentage <= 0:
        percentage = max(5, 50 - total // 125)
    return max(100, total * percentage // 100)


class FilterCache:
    """Within one cycle, the filters that read only the pod's spec and the node object (plugins with
    `node_only = True`) give the same verdict for every pod with the same such spec, so a burst of identical
    pods pays for them once per node, not once per pod and node. Nodes do not change within a cycle."""

    def __init__(self) -> None:
        self._passed: dict[str, dict[str, bool]] = {}

    def verdicts(self, pod: V1Pod) -> dict[str, bool]:
        spec = pod.spec
        affinity = spec.affinity.node_affinity if spec and spec.affinity else None
        key = repr((spec.scheduler_name, spec.tolerations, spec.node_selector, affinity)) if spec else ""
        return self._passed.setdefault(key, {})


def _skips(plugin: FilterPlugin, pod: V1Pod, state: CycleState) -> bool:
    skips = getattr(plugin, "skips", None)
    return bool(skips(pod, state)) if skips else False


def _passes(filters: Sequence[FilterPlugin], pod: V1Pod, node: NodeInfo, state: CycleState) -> bool:
    for plugin in filters:  # noqa: SIM110 — a plain loop is faster, and this runs for every pod and node
        if plugin.filter(pod, node, state).code is not Code.SUCCESS:
            return False
    return True


def schedule(
    profile: Profile,
    pod: V1Pod,
    nodes: Sequence[NodeInfo],
    *,
    find: int | None = None,
    start: int = 0,
    cache: FilterCache | None = None,
    explain: bool = False,
) -> Decision:
    """Filter nodes from `start` (rotating, as kube does) until `find` feasible ones are found, score them,
    pick the best (ties: lowest node name). A pod that fits nowhere has been checked against every node.

    Only `explain` (or a pod that fits nowhere) keeps every filter's verdict and every plugin's score; the
    daemon's path stops at a node's first failing filter."""
    state = CycleState(nodes)
    find = len(nodes) if find is None else find
    node_only = [p for p in profile.filters if getattr(p, "node_only", False)]
    others = [
        p for p in profile.filters if not getattr(p, "node_only", False) and not (explain or _skips(p, pod, state))
    ]
    cached = cache.verdicts(pod) if cache is not None else {}
    verdicts: dict[str, dict[str, Status]] = {}
    feasible: list[NodeInfo] = []
    for i in range(len(nodes)):
        node = nodes[(start + i) % len(nodes)]
        if explain:
            verdicts[node.name] = verdict = run_filters(profile, pod, node, state)
            ok = all(s.ok for s in verdict.values())
        else:
            known = cached.get(node.name)
            if known is None:
                known = cached[node.name] = _passes(node_only, pod, node, state)
            ok = known and _passes(others, pod, node, state)
        if ok:
            feasible.append(node)
            if len(feasible) >= find:
                break
    if not feasible:
        verdicts = verdicts or {n.name: run_filters(profile, pod, n, state) for n in nodes}
        message = failure_message(len(nodes), (reasons(v) for v in verdicts.values()))
        return Decision(None, message, verdicts, {}, {})
    totals, per_plugin = run_scores(profile, pod, feasible, state)
    by_name = {n.name: t for n, t in zip(feasible, totals, strict=True)}
    scores = (
        {n.name: {plugin: values[i] for plugin, values in per_plugin.items()} for i, n in enumerate(feasible)}
        if explain
        else {}
    )
    best = min(feasible, key=lambda n: (-by_name[n.name], n.name))
    return Decision(best.name, "", verdicts, by_name, scores)
