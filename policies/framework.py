"""The scheduling framework's types: statuses, the per-node view (NodeInfo and its compact records), the per-pod
scratch state, the plugin protocols and their optional capabilities, normalisation, and the profile.

Modelled on kube-scheduler's framework, kept tiny: a plugin has a name; Filter and Score are separate
capabilities; scores are normalised to 0..100 by one shared helper, then weighted and summed (algorithm.py
runs them). Nothing here does I/O.
"""

from __future__ import annotations

import enum
import sys
from abc import abstractmethod
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar, runtime_checkable

import numpy as np
import numpy.typing as npt
from kubernetes.client import V1Affinity, V1LabelSelector, V1Node, V1ObjectMeta, V1Pod, V1PodSpec, V1PodStatus, V1Taint

from policies.resources import (
    CPU,
    EPHEMERAL_STORAGE,
    MEMORY,
    PODS,
    Resources,
    allocatable,
    host_ports,
    nonzero_requests,
    pod_requests,
)
from policies.volumes import NO_VOLUMES, VolumeObjects, claim_keys

if TYPE_CHECKING:
    from policies.node_table import NodeTable

MAX_SCORE = 100
_K = TypeVar("_K")


class Code(enum.Enum):
    SUCCESS = "Success"
    UNSCHEDULABLE = "Unschedulable"
    # kube's UnschedulableAndUnresolvable: removing pods from the node cannot make the pod fit it, so
    # preemption does not try the node (framework/interface.go).
    UNRESOLVABLE = "UnschedulableAndUnresolvable"
    ERROR = "Error"  # a plugin bug, not a verdict on the node (kube's framework.Error)


@dataclass(frozen=True, slots=True)
class Status:
    code: Code = Code.SUCCESS
    reasons: tuple[str, ...] = ()
    error: Exception | None = None  # what an ERROR status was made from, for the traceback in the log

    @property
    def ok(self) -> bool:
        return self.code is Code.SUCCESS


def unschedulable(*reasons: str) -> Status:
    return Status(Code.UNSCHEDULABLE, reasons)


def unresolvable(*reasons: str) -> Status:
    return Status(Code.UNRESOLVABLE, reasons)


def as_error(plugin: str, phase: str, error: Exception) -> Status:
    """kube's framework.AsStatus: a plugin that raised, reported with its name and the exception's text."""
    return Status(Code.ERROR, (f'running {phase} plugin "{plugin}": {type(error).__name__}: {error}',), error)


SUCCESS = Status()


@dataclass(frozen=True, slots=True)
class PodInfo:
    """What the policies read of a pod already on (or assumed onto) a node: a compact record, so the cache
    holds tens of thousands of pods without their client models (~25 KB each)."""

    namespace: str
    name: str
    uid: str
    node_name: str
    labels: Mapping[str, str]
    requests: Resources
    # Requests with kube's scoring defaults (100m CPU / 200Mi) for containers that ask for nothing.
    nonzero_requests: Resources
    ports: frozenset[tuple[str, str, int]]
    workload: str | None
    # Kept only when the pod has pod (anti-)affinity terms: other pods are judged against them.
    affinity: V1Affinity | None
    deleting: bool
    priority: int
    # status.startTime in epoch seconds; None until the kubelet starts the pod, which kube's GetPodStartTime
    # reads as "now", the latest possible start (pkg/scheduler/util/utils.go). Preemption orders victims by it.
    start_time: float | None = None
    # Deleting with a DisruptionTarget condition a scheduler's preemption set (preemption/util.go's
    # PodTerminatingByPreemption): a preemptor waits for such pods on its nominated node.
    terminating_by_preemption: bool = False
    # "namespace/name" of the claims its volumes use (persistentVolumeClaim and generic ephemeral volumes):
    # VolumeRestrictions and NodeVolumeLimits count them per node.
    claims: tuple[str, ...] = ()

    @classmethod
    def of(cls, pod: V1Pod, node_name: str | None = None) -> PodInfo:
        meta, spec, status = pod.metadata or V1ObjectMeta(), pod.spec or V1PodSpec(containers=[]), pod.status
        affinity = spec.affinity
        keep = affinity is not None and (affinity.pod_affinity is not None or affinity.pod_anti_affinity is not None)
        namespace, name = str(meta.namespace or ""), str(meta.name or "")
        return cls(
            namespace=namespace,
            name=name,
            uid=str(meta.uid or f"{namespace}/{name}"),  # every stored pod has a uid; hand-made ones may not
            node_name=node_name or str(spec.node_name or ""),
            labels=meta.labels or {},
            requests=pod_requests(pod),
            nonzero_requests=nonzero_requests(pod),
            ports=frozenset(host_ports(pod)),
            workload=workload(pod),
            affinity=affinity if keep else None,
            deleting=meta.deletion_timestamp is not None,
            priority=spec.priority or 0,
            start_time=status.start_time.timestamp() if status and status.start_time else None,
            terminating_by_preemption=meta.deletion_timestamp is not None and _preemption_target(status),
            claims=claim_keys(pod),
        )

    @property
    def required_anti_affinity(self) -> bool:
        anti = self.affinity.pod_anti_affinity if self.affinity else None
        return bool(anti and anti.required_during_scheduling_ignored_during_execution)


def _preemption_target(status: V1PodStatus | None) -> bool:
    """The first DisruptionTarget condition is True with reason PreemptionByScheduler (kube reads only the first)."""
    for condition in (status.conditions if status else None) or []:
        if condition.type == "DisruptionTarget":
            return bool(condition.status == "True" and condition.reason == "PreemptionByScheduler")
    return False


@dataclass(frozen=True, slots=True)
class NodeFacts:
    """What the policies read of a Node object; equal facts mean a node update changed nothing they see
    (a heartbeat), so the cache and the queue can ignore it."""

    name: str
    labels: Mapping[str, str]
    taints: tuple[V1Taint, ...]
    unschedulable: bool
    ready: str | None  # the Ready condition's status, None when there is none
    allocatable: Resources
    # status.images: each name the node reports → that image's size in bytes (ImageLocality).
    images: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def of(cls, node: V1Node) -> NodeFacts:
        meta, spec, status = node.metadata, node.spec, node.status
        conditions = (status.conditions if status else None) or []
        return cls(
            name=str(meta.name) if meta else "",
            labels=(meta.labels if meta else None) or {},
            taints=tuple((spec.taints if spec else None) or ()),
            unschedulable=bool(spec and spec.unschedulable),
            ready=next((c.status for c in conditions if c.type == "Ready"), None),
            allocatable=allocatable(node),
            images=node_images(node),
        )


def node_images(node: V1Node) -> dict[str, int]:
    """Every name of every image in status.images with its size, names interned: nodes of one cluster report
    the same images, so their names are held once (kube's cache keeps one ImageStateSummary per name)."""
    images = (node.status.images if node.status else None) or []
    return {sys.intern(name): int(image.size_bytes or 0) for image in images for name in image.names or []}


# A node's resource numbers in one row (NodeInfo.row): allocatable, then requested, of ROW_RESOURCES, then what
# its pods request of cpu and memory with kube's scoring defaults (100m / 200Mi for a container without).
ROW_RESOURCES = (CPU, MEMORY, PODS, EPHEMERAL_STORAGE)
ALLOCATABLE, REQUESTED, NONZERO = 0, len(ROW_RESOURCES), 2 * len(ROW_RESOURCES)
ROW_LENGTH = NONZERO + 2


@dataclass(slots=True, eq=False)
class NodeInfo:
    """A node and what the pods assigned to it already take (kube-scheduler's NodeInfo), kept up to date
    pod by pod: `add_pod` and `remove_pod` adjust every aggregate, so nothing is rebuilt per cycle."""

    facts: NodeFacts
    pods: dict[str, PodInfo] = field(default_factory=dict)  # by uid
    requested: Resources = field(default_factory=Counter)
    nonzero_requested: Resources = field(default_factory=Counter)
    used_ports: Counter[tuple[str, str, int]] = field(default_factory=Counter)
    # How many pods of each workload (see `workload()`) run here: kept up to date so spreading is O(nodes).
    workloads: Counter[str] = field(default_factory=Counter)
    # Pods with required anti-affinity (kube's PodsWithRequiredAntiAffinity): every pod being scheduled must be
    # checked against their terms, and scanning all pods for them would make that O(pods) per pod.
    anti_affinity_pods: dict[str, PodInfo] = field(default_factory=dict)
    # Pods with any pod (anti-)affinity term (kube's PodsWithAffinity): InterPodAffinity's score reads their
    # terms for every pod being scheduled.
    affinity_pods: dict[str, PodInfo] = field(default_factory=dict)
    # How many of its pods use each claim ("namespace/name"; kube's PVCRefCounts, with generic ephemeral
    # volumes' claims too): VolumeRestrictions' ReadWriteOncePod check, NodeVolumeLimits' count.
    claim_refs: Counter[str] = field(default_factory=Counter)
    # The facts again as plain attributes: filters and scores read them for every pod and node.
    name: str = field(init=False)
    labels: Mapping[str, str] = field(init=False)
    taints: tuple[V1Taint, ...] = field(init=False)
    unschedulable: bool = field(init=False)
    ready: str | None = field(init=False)
    allocatable: Resources = field(init=False)
    # The cache's NodeTable (node_table.py) and this node's row in it, told of every change; None for the
    # nodes a test or preemption's dry run makes.
    table: NodeTable | None = field(default=None, repr=False)
    slot: int = -1
    # What the resource filters and scores read of every node, as one row (ROW), kept with the counters.
    row: tuple[int, ...] = field(init=False)
    # What a policy derived from this node as it is now (e.g. how many of its pods match a selector), for the
    # next pods to reuse: emptied whenever the node changes.
    memo: dict[Any, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.set_facts(self.facts)

    def _sync(self) -> None:
        self.memo = {}
        allocatable, requested, nonzero = self.allocatable, self.requested, self.nonzero_requested
        self.row = (
            *(allocatable.get(r, 0) for r in ROW_RESOURCES),
            *(requested.get(r, 0) for r in ROW_RESOURCES),
            nonzero.get(CPU, 0),
            nonzero.get(MEMORY, 0),
        )
        if self.table is not None:
            self.table.changed(self.slot)

    @classmethod
    def of(cls, node: V1Node, pods: Iterable[V1Pod | PodInfo] = ()) -> NodeInfo:
        info = cls(NodeFacts.of(node))
        for pod in pods:
            info.add_pod(pod if isinstance(pod, PodInfo) else PodInfo.of(pod, info.name))
        return info

    def set_facts(self, facts: NodeFacts) -> None:
        self.facts = facts
        self.name, self.labels, self.taints = facts.name, facts.labels, facts.taints
        self.unschedulable, self.ready, self.allocatable = facts.unschedulable, facts.ready, facts.allocatable
        self._sync()

    def clone(self) -> NodeInfo:
        """An independent copy to add pods to or remove pods from (kube's NodeInfo.Snapshot), for preemption's dry
        run and nominated pods; the facts and the PodInfo records are immutable and shared."""
        return NodeInfo(
            self.facts,
            dict(self.pods),
            Counter(self.requested),
            Counter(self.nonzero_requested),
            Counter(self.used_ports),
            Counter(self.workloads),
            dict(self.anti_affinity_pods),
            dict(self.affinity_pods),
            Counter(self.claim_refs),
        )

    def add_pod(self, pod: PodInfo) -> None:
        if pod.uid in self.pods:
            self.remove_pod(pod.uid)
        self.pods[pod.uid] = pod
        self.requested.update(pod.requests)
        self.nonzero_requested.update(pod.nonzero_requests)
        self.used_ports.update(pod.ports)
        if pod.workload:
            self.workloads[pod.workload] += 1
        if pod.required_anti_affinity:
            self.anti_affinity_pods[pod.uid] = pod
        if pod.affinity is not None:
            self.affinity_pods[pod.uid] = pod
        if pod.claims:
            self.claim_refs.update(pod.claims)
        self._sync()

    def remove_pod(self, uid: str) -> PodInfo | None:
        pod = self.pods.pop(uid, None)
        if pod is None:
            return None
        _take(self.requested, pod.requests.items())
        _take(self.nonzero_requested, pod.nonzero_requests.items())
        _take(self.used_ports, ((port, 1) for port in pod.ports))
        if pod.workload:
            _take(self.workloads, ((pod.workload, 1),))
        self.anti_affinity_pods.pop(uid, None)
        self.affinity_pods.pop(uid, None)
        if pod.claims:
            _take(self.claim_refs, ((claim, 1) for claim in pod.claims))
        self._sync()
        return pod


def _take(counter: Counter[_K], amounts: Iterable[tuple[_K, int]]) -> None:
    """Subtract, dropping what reaches zero so that equal states compare equal (a hot loop of preemption's dry
    run: faster than Counter.subtract followed by a sweep)."""
    for key, amount in amounts:
        left = counter[key] - amount
        if left:
            counter[key] = left
        else:
            del counter[key]


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


_T = TypeVar("_T")


class Key(Generic[_T]):
    """A typed CycleState key (kube's StateKey): one module constant per piece of scratch state, so `memo`
    gives back the type that was stored. Keys compare by identity; the name is for reading. A `pod_only` value
    depends on the pod alone, so states derived for a changed cluster (`standing_in`) share the base's."""

    __slots__ = ("name", "pod_only")

    def __init__(self, name: str, *, pod_only: bool = False) -> None:
        self.name = name
        self.pod_only = pod_only

    def __repr__(self) -> str:
        return f"Key({self.name!r})"


@dataclass(frozen=True, slots=True)
class WorkloadSelectors:
    """What kube's DefaultSelector reads, for PodTopologySpread's system defaults: per namespace the selectors
    of its Services (those with one) by name, and the selectors of controllers by (kind, namespace, name) — a
    ReplicationController's as a map, a ReplicaSet's or StatefulSet's as a label selector."""

    services: Mapping[str, Mapping[str, Mapping[str, str]]] = field(default_factory=dict)  # ns → name → selector
    controllers: Mapping[tuple[str, str, str], Mapping[str, str] | V1LabelSelector] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ClusterObjects:
    """What the policies read of the cluster besides the nodes and their pods, kept up to date by the cache:
    namespaces' labels (InterPodAffinity's namespaceSelector), Services' and controllers' selectors
    (PodTopologySpread's system defaults), and how many nodes report each image (ImageLocality, as kube's
    cache keeps ImageStateSummary.NumNodes), and the storage objects the volume policies read."""

    namespaces: Mapping[str, Mapping[str, str]]
    selectors: WorkloadSelectors
    image_nodes: Mapping[str, int]
    volumes: VolumeObjects = NO_VOLUMES


class CycleState:
    """Per-pod scratch space, so a plugin computes cluster-wide facts once per pod, not once per node.

    A state made by `standing_in` is for the cluster with one node changed (preemption's victims removed,
    nominated pods added): `base` and `change` let a plugin adjust its facts from the base state's for that one
    node instead of recounting the cluster (kube's PreFilterExtensions AddPod/RemovePod on a cloned state)."""

    def __init__(self, nodes: Sequence[NodeInfo], objects: ClusterObjects | None = None) -> None:
        self.nodes = nodes
        # What the caller knows of the cluster besides the nodes (None: nothing; the policies then do without).
        self.namespaces = objects.namespaces if objects else None
        self.selectors = objects.selectors if objects else None
        self.image_nodes = objects.image_nodes if objects else None
        self.volumes = objects.volumes if objects else NO_VOLUMES
        self.scored: Sequence[NodeInfo] = nodes  # the feasible nodes, once filtering is done
        self._memo: dict[Key[Any], Any] = {}
        self.base: CycleState | None = None
        self.change: tuple[NodeInfo, NodeInfo] | None = None  # (the node in `base`, the node here)

    def standing_in(self, nodes: Sequence[NodeInfo], index: int) -> CycleState:
        """A fresh state for `nodes`: this state's cluster with nodes[index] (a changed clone) in place of
        self.nodes[index]. `nodes` may be reused across calls while the clone changes; each call starts afresh."""
        root = self.base or self
        derived = CycleState(nodes)
        derived.namespaces, derived.selectors, derived.image_nodes = root.namespaces, root.selectors, root.image_nodes
        derived.volumes = root.volumes
        derived.base, derived.change = root, (root.nodes[index], nodes[index])
        return derived

    def memo(self, key: Key[_T], compute: Callable[[], _T]) -> _T:
        if key.pod_only and self.base is not None:
            return self.base.memo(key, compute)
        if key not in self._memo:
            self._memo[key] = compute()
        value: _T = self._memo[key]  # stored under a Key[_T] by the line above
        return value


class FilterPlugin(Protocol):
    name: str
    # True when the verdict reads only the pod's spec and the node object, so FilterCache may reuse it.
    node_only: ClassVar[bool]

    def filter(self, pod: V1Pod, node: NodeInfo, state: CycleState) -> Status: ...


@runtime_checkable
class PreFilterSkip(Protocol):
    """A filter that can tell, once per pod, that it passes every node (kube's PreFilter returning Skip), so it
    is not run per node. Declared by subclassing, so a misspelt method is an abstract one left unimplemented."""

    @abstractmethod
    def skips(self, pod: V1Pod, state: CycleState) -> bool: ...


@runtime_checkable
class BatchFilter(Protocol):
    """A pod filter that judges all the nodes in one call: `filter`'s pass or fail per node, without the reasons
    (the daemon's path filters with it; reasons, for a pod that fits nowhere and for `explain`, come from
    `filter`, which must share its rule)."""

    @abstractmethod
    def filter_all(self, pod: V1Pod, nodes: Sequence[NodeInfo], state: CycleState) -> npt.NDArray[np.bool_]: ...


@runtime_checkable
class PreFilter(Protocol):
    """A filter with a once-per-pod verdict that can reject the pod on every node at once (kube's PreFilter
    returning a failure: FitError then shows its message alone, `0/3 nodes are available: <message>.`)."""

    @abstractmethod
    def prefilter(self, pod: V1Pod, state: CycleState) -> Status: ...


class Normalize(enum.Enum):
    NONE = "none"  # raw score is already 0..100
    MAX = "max"  # the highest raw score becomes 100
    REVERSE = "reverse"  # the highest raw score becomes 0, a raw 0 becomes 100


class ScorePlugin(Protocol):
    name: str
    normalize: Normalize

    def score(self, pod: V1Pod, node: NodeInfo, state: CycleState) -> float: ...


@runtime_checkable
class UniformScore(Protocol):
    """A score that can tell, once per pod, that every node gets the same normalised score (kube's PreScore
    returning Skip): `uniform_score` returns it, or None when nodes must be scored one by one."""

    @abstractmethod
    def uniform_score(self, pod: V1Pod, state: CycleState) -> float | None: ...


@runtime_checkable
class BatchScore(Protocol):
    """A score that scores all the nodes in one call (the same numbers as `score` node by node): for the
    per-node arithmetic that runs for every pod and scored node, where a call per node is most of the cost."""

    @abstractmethod
    def score_all(self, pod: V1Pod, nodes: Sequence[NodeInfo], state: CycleState) -> Scores: ...


Scores = npt.NDArray[np.float64]  # one score per node, in the nodes' order


def normalise(scores: Sequence[float] | Scores, mode: Normalize) -> Scores:
    """kube's DefaultNormalizeScore: scale so the best raw score maps to MAX_SCORE."""
    raw = np.asarray(scores, dtype=np.float64)
    if mode is Normalize.NONE:
        return raw
    top = raw.max(initial=0.0)
    if top <= 0:
        return np.full(len(raw), float(MAX_SCORE) if mode is Normalize.REVERSE else 0.0)
    if (raw == np.trunc(raw)).all():  # kube's int64 arithmetic: floor, as kube's scores do
        scaled = (raw.astype(np.int64) * MAX_SCORE // int(top)).astype(np.float64)
    else:
        scaled = raw * MAX_SCORE / top
    return MAX_SCORE - scaled if mode is Normalize.REVERSE else scaled


@dataclass(frozen=True, slots=True)
class Profile:
    """One scheduler name with its filters and weighted score plugins (a kube-scheduler profile).

    The plugins' optional capabilities are resolved here, once: `isinstance` against a Protocol is too slow
    for every pod and node."""

    scheduler_name: str
    filters: tuple[FilterPlugin, ...]
    scores: tuple[tuple[ScorePlugin, int], ...]
    preemption: bool = True  # kube's DefaultPreemption PostFilter
    node_only_filters: tuple[FilterPlugin, ...] = field(init=False, repr=False, compare=False)
    # The other filters, each with itself again when it can skip a pod (PreFilterSkip), else None.
    pod_filters: tuple[tuple[FilterPlugin, PreFilterSkip | None], ...] = field(init=False, repr=False, compare=False)
    # The pod filters that can judge all nodes in one call (BatchFilter), by name.
    batch_filters: Mapping[str, BatchFilter] = field(init=False, repr=False, compare=False)
    # The filters with a PreFilter verdict (PreFilter), in the profile's order.
    prefilters: tuple[tuple[FilterPlugin, PreFilter], ...] = field(init=False, repr=False, compare=False)
    # (plugin, weight, the plugin again when it can give a uniform score, else None)
    # Each score plugin again when it can score all nodes in one call (BatchScore), else None; as `scores`.
    batch_scores: tuple[BatchScore | None, ...] = field(init=False, repr=False, compare=False)
    weighted_scores: tuple[tuple[ScorePlugin, int, UniformScore | None], ...] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        # A frozen dataclass sets its derived fields through object.__setattr__.
        object.__setattr__(self, "node_only_filters", tuple(p for p in self.filters if p.node_only))
        object.__setattr__(
            self,
            "pod_filters",
            tuple((p, p if isinstance(p, PreFilterSkip) else None) for p in self.filters if not p.node_only),
        )
        object.__setattr__(
            self, "batch_filters", {p.name: p for p, _ in self.pod_filters if isinstance(p, BatchFilter)}
        )
        object.__setattr__(self, "prefilters", tuple((p, p) for p in self.filters if isinstance(p, PreFilter)))
        object.__setattr__(
            self,
            "weighted_scores",
            tuple((p, w, p if isinstance(p, UniformScore) else None) for p, w in self.scores),
        )
        object.__setattr__(
            self, "batch_scores", tuple(p if isinstance(p, BatchScore) else None for p, _ in self.scores)
        )
