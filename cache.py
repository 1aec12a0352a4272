"""The scheduler's view of the cluster, kept from watch events (informer.py), not rebuilt per cycle.

- Compact records: a pod on a node is a `PodInfo` (~1 KB with its strings, against ~25 KB for a client model),
  a node is its `NodeFacts`; each `NodeInfo` keeps its aggregates up to date pod by pod.
- Assume / confirm / expire, as kube-scheduler's cache does: a pod is counted on its node as soon as it is
  decided (assumed), so the next decision sees it; the watch confirms it; a failed bind forgets it; a bound pod
  the watch never confirms expires after `ASSUMED_TTL_SECONDS`.
- Pods whose node is not (or no longer) known wait aside and join the node when it appears.

Owned by the scheduling loop's thread (informers hand their events over through the loop's inbox): no lock.
The conversions from the API's JSON (`node_facts`, `pod_info`, `pending_pod`) run in the informer threads.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from kubernetes.client import V1LabelSelector, V1Node, V1Pod, V1PodDisruptionBudget

from policies.algorithm import FilterCache
from policies.framework import ClusterObjects, NodeFacts, NodeInfo, PodInfo, WorkloadSelectors
from policies.node_table import NodeList, NodeTable
from policies.preemption import Budget
from policies.volume_binding import PodVolumes
from policies.volumes import Claim, StorageClass, Volume, VolumeObjects, csi_limits
from scheduling_queue import PendingPod

log = logging.getLogger("my-scheduler")

_K = TypeVar("_K")
_V = TypeVar("_V")

ASSUMED_TTL_SECONDS = 30.0  # after its bind succeeded, how long an unconfirmed assumed pod is counted


def node_facts(obj: dict[str, Any]) -> NodeFacts:
    node = V1Node.from_dict(obj)
    assert node is not None  # from_dict returns None only for None
    return NodeFacts.of(node)


def namespace_labels(obj: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """(name, labels) of a Namespace object."""
    meta = obj["metadata"]
    return meta["name"], meta.get("labels") or {}


SelectorKey = tuple[str, str, str]  # (kind, namespace, name)
SELECTOR_KINDS = ("Service", "ReplicationController", "ReplicaSet", "StatefulSet")


def workload_selector(kind: str, obj: dict[str, Any]) -> tuple[SelectorKey, Mapping[str, str] | V1LabelSelector | None]:
    """((kind, namespace, name), selector) of a Service or controller: a map for a Service (None without one)
    and a ReplicationController, a label selector for a ReplicaSet and a StatefulSet."""
    meta, spec = obj["metadata"], obj.get("spec") or {}
    key = (kind, meta.get("namespace", ""), meta["name"])
    raw = spec.get("selector")
    if raw is None:
        return key, None
    if kind in ("Service", "ReplicationController"):
        return key, dict(raw)
    return key, V1LabelSelector.from_dict(raw)


STORAGE_KINDS = ("PersistentVolumeClaim", "PersistentVolume", "StorageClass", "CSINode")
StorageRecord = Claim | Volume | StorageClass | dict[str, int]


def storage_key(kind: str, obj: dict[str, Any]) -> str:
    """A storage object's key in VolumeObjects: "namespace/name" for a claim, the name for the others."""
    meta = obj["metadata"]
    return f"{meta.get('namespace', '')}/{meta['name']}" if kind == "PersistentVolumeClaim" else str(meta["name"])


def storage_record(kind: str, obj: dict[str, Any]) -> StorageRecord:
    """The compact record the volume policies read of a PersistentVolumeClaim, PersistentVolume, StorageClass or
    CSINode (its drivers' volume limits)."""
    if kind == "PersistentVolumeClaim":
        return Claim.of(obj)
    if kind == "PersistentVolume":
        return Volume.of(obj)
    if kind == "StorageClass":
        return StorageClass.of(obj)
    return csi_limits(obj)[1]


def pod_model(obj: dict[str, Any]) -> V1Pod:
    pod = V1Pod.from_dict(_without_managed_fields(obj))
    assert pod is not None
    return pod


def pod_info(obj: dict[str, Any]) -> PodInfo:
    return compact(PodInfo.of(pod_model(obj)))


_shared: dict[object, Any] = {}


def compact(pod: PodInfo) -> PodInfo:
    """The record with its requests and ports shared with every equal one: pods of one workload ask for the
    same, so 50,000 pods hold a few dozen of these instead of 150,000. (Labels are left alone: a StatefulSet's
    pods each have their own, and this table never shrinks.) Shared values are never mutated. Called from the
    loop's and the informers' threads: `setdefault` is atomic."""

    def shared(value: Any) -> Any:
        return _shared.setdefault((type(value), frozenset(value.items() if isinstance(value, dict) else value)), value)

    return replace(
        pod,
        requests=shared(pod.requests),
        nonzero_requests=shared(pod.nonzero_requests),
        ports=shared(pod.ports),
    )


def budget(obj: dict[str, Any]) -> Budget:
    pdb = V1PodDisruptionBudget.from_dict(obj)
    assert pdb is not None
    return Budget.of(pdb)


def pending_pod(obj: dict[str, Any]) -> PendingPod:
    """The queue's record of a pending pod: its manifest as compact JSON, without managedFields."""
    obj = _without_managed_fields(obj)
    meta, spec = obj["metadata"], obj.get("spec") or {}
    digest = hash(json.dumps([spec, meta.get("labels"), meta.get("deletionTimestamp")], sort_keys=True))
    return PendingPod(
        uid=meta["uid"],
        namespace=meta.get("namespace", ""),
        name=meta["name"],
        priority=int(spec.get("priority") or 0),
        created=meta.get("creationTimestamp") or "",
        gated=bool(spec.get("schedulingGates")),
        nominated_node=(obj.get("status") or {}).get("nominatedNodeName") or "",
        manifest=json.dumps(obj, separators=(",", ":")).encode(),
        spec_digest=digest,
    )


def _put(table: dict[_K, _V], key: _K, value: _V | None) -> None:
    """A record set, or dropped when it is gone (None)."""
    if value is None:
        table.pop(key, None)
    else:
        table[key] = value


def _without_managed_fields(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    if "managedFields" not in meta:
        return obj
    return {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}


@dataclass(slots=True)
class ClusterCache:
    clock: Callable[[], float]
    nodes: dict[str, NodeInfo] = field(default_factory=dict)
    _where: dict[str, str] = field(default_factory=dict)  # pod uid → the node it is counted on
    _waiting: dict[str, dict[str, PodInfo]] = field(default_factory=dict)  # node name → pods of an unknown node
    _assumed: dict[str, float | None] = field(default_factory=dict)  # uid → expiry (None: bind in flight)
    _sorted: NodeList | None = None
    _filters: FilterCache | None = None  # node-only verdicts per pod shape, until a node changes
    # The nodes' resource numbers as one array (the resource filter and scores read many nodes at once).
    table: NodeTable = field(default_factory=NodeTable)
    budgets: dict[str, Budget] = field(default_factory=dict)  # PodDisruptionBudgets by uid
    # Pending pods a preemption nominated to a node (kube's nominator): uid → the pod on that node.
    _nominated: dict[str, PodInfo] = field(default_factory=dict)
    _by_node: dict[str, list[PodInfo]] | None = None
    # Namespace name → its labels (InterPodAffinity's namespaceSelector), from the Namespace informer.
    namespaces: dict[str, Mapping[str, str]] = field(default_factory=dict)
    # Services' and controllers' selectors (PodTopologySpread's system defaults), from their informers.
    selectors: WorkloadSelectors = field(default_factory=lambda: WorkloadSelectors({}, {}))
    # Image name → how many nodes report it (ImageLocality's spread), kept with the nodes.
    image_nodes: Counter[str] = field(default_factory=Counter)
    # Claims, volumes, storage classes and CSINodes' limits (the volume filters), from their informers.
    volumes: VolumeObjects = field(default_factory=VolumeObjects)

    def objects(self) -> ClusterObjects:
        """What the policies read besides the nodes: live views, not copies (the loop's thread owns both)."""
        return ClusterObjects(self.namespaces, self.selectors, self.image_nodes, self.volumes)

    def assume_volumes(self, plan: PodVolumes, node: str) -> None:
        """The binder's writes counted before they are posted (kube's AssumePodVolumes): the next pods see the
        matched volumes claimed and the claims to provision on their node. The informers then bring the truth."""
        for claim, volume in plan.static:
            ref = (claim.namespace, claim.name, claim.uid)
            self.set_storage("PersistentVolume", volume.name, replace(volume, claim_ref=ref))
        for claim in plan.provision:
            self.set_storage(
                "PersistentVolumeClaim", f"{claim.namespace}/{claim.name}", replace(claim, selected_node=node)
            )

    def forget_volumes(self, plan: PodVolumes) -> None:
        """The binder failed (and undid its writes): the records as the filters saw them (kube's revertAssumed)."""
        for _, volume in plan.static:
            self.set_storage("PersistentVolume", volume.name, volume)
        for claim in plan.provision:
            self.set_storage("PersistentVolumeClaim", f"{claim.namespace}/{claim.name}", claim)

    def set_storage(self, kind: str, key: str, record: StorageRecord | None) -> None:
        """A storage object (see `storage_record`) by its `storage_key`; None when it is gone."""
        table = {
            "PersistentVolumeClaim": self.volumes.claims,
            "PersistentVolume": self.volumes.volumes,
            "StorageClass": self.volumes.classes,
            "CSINode": self.volumes.csi_nodes,
        }[kind]
        assert isinstance(table, dict)  # this cache's own
        _put(table, key, record)

    # --- namespaces ---------------------------------------------------------------------------------------

    def set_namespace(self, name: str, labels: Mapping[str, str] | None) -> None:
        """A namespace's labels; None when it is gone."""
        _put(self.namespaces, name, labels)

    def set_selector(self, key: SelectorKey, selector: Mapping[str, str] | V1LabelSelector | None) -> None:
        """A Service's or controller's selector (see `workload_selector`); None when it is gone or has none."""
        kind, namespace, name = key
        services = self.selectors.services
        controllers = self.selectors.controllers
        assert isinstance(services, dict) and isinstance(controllers, dict)  # this cache's own
        if kind == "Service":
            in_namespace = services.setdefault(namespace, {})
            if isinstance(selector, Mapping):
                in_namespace[name] = selector
            else:
                in_namespace.pop(name, None)
        else:
            _put(controllers, key, selector)

    # --- nodes --------------------------------------------------------------------------------------------

    def set_node(self, facts: NodeFacts) -> bool:
        """Add or update a node; False when nothing the policies read changed (a heartbeat)."""
        info = self.nodes.get(facts.name)
        if info is not None:
            if info.facts == facts:
                return False
            self._count_images(info.facts, -1)
            self._count_images(facts, 1)
            info.set_facts(facts)
            self._filters = None
            return True
        self._count_images(facts, 1)
        self.nodes[facts.name] = info = NodeInfo(facts)
        self.table.add(info)
        for pod in self._waiting.pop(facts.name, {}).values():
            info.add_pod(pod)
        self._sorted = None
        return True

    def remove_node(self, name: str) -> None:
        info = self.nodes.pop(name, None)
        if info is not None:
            self._count_images(info.facts, -1)
            self.table.remove(info)
            self._waiting[name] = dict(info.pods)  # they leave when their own DELETED events come
            self._sorted = None

    def _count_images(self, facts: NodeFacts, change: int) -> None:
        for image in facts.images:
            self.image_nodes[image] += change
            if not self.image_nodes[image]:
                del self.image_nodes[image]

    def node_list(self) -> NodeList:
        """The nodes sorted by name (the order sampling rotates over), rebuilt only when nodes come or go."""
        if self._sorted is None:
            self._sorted = NodeList(sorted(self.nodes.values(), key=lambda n: n.name), self.table)
        return self._sorted

    def filter_cache(self) -> FilterCache:
        """The node-only filters' verdicts per pod shape (policies/algorithm.py), kept while no node changes (one
        that comes or goes makes a new node list, which it notices): a burst of one workload's pods judges every
        node once, not once per step of the loop."""
        if self._filters is None:
            self._filters = FilterCache()
        return self._filters

    # --- PodDisruptionBudgets -----------------------------------------------------------------------------

    def set_budget(self, uid: str, budget: Budget | None) -> None:
        _put(self.budgets, uid, budget)

    # --- nominated pods -----------------------------------------------------------------------------------

    def nominate(self, pod: PodInfo) -> None:
        """`pod` (pending) is nominated to `pod.node_name`: pods of lower or equal priority must leave it room."""
        self._nominated[pod.uid] = pod
        self._by_node = None

    def unnominate(self, uid: str) -> PodInfo | None:
        pod = self._nominated.pop(uid, None)
        if pod is not None:
            self._by_node = None
        return pod

    def retain_nominations(self, uids: set[str]) -> None:
        for uid in self._nominated.keys() - uids:
            self.unnominate(uid)

    def nomination(self, uid: str) -> str | None:
        pod = self._nominated.get(uid)
        return pod.node_name if pod is not None else None

    def nominated(self) -> Mapping[str, list[PodInfo]]:
        """The nominated pods by node (empty, and free, when there are none: the common case)."""
        if self._by_node is None:
            self._by_node = {}
            for pod in self._nominated.values():
                self._by_node.setdefault(pod.node_name, []).append(pod)
        return self._by_node

    # --- pods ---------------------------------------------------------------------------------------------

    def add_pod(self, pod: PodInfo) -> str:
        """A pod on a node, from the watch: 'confirmed' (we assumed it there), 'added', or 'changed'."""
        confirmed = self._assumed.pop(pod.uid, False) is not False and self._where.get(pod.uid) == pod.node_name
        known = self._remove(pod.uid) is not None
        self._where[pod.uid] = pod.node_name
        info = self.nodes.get(pod.node_name)
        if info is not None:
            info.add_pod(pod)
        else:
            self._waiting.setdefault(pod.node_name, {})[pod.uid] = pod
        return "confirmed" if confirmed else "changed" if known else "added"

    def remove_pod(self, uid: str) -> bool:
        self._assumed.pop(uid, None)
        return self._remove(uid) is not None

    def has_pod(self, uid: str) -> bool:
        return uid in self._where

    def assumed_pod(self, uid: str) -> PodInfo | None:
        """The record of a pod we assumed and the watch has not confirmed yet. Informer threads ask it, so it
        reads dicts without a lock; the answer may be stale, and `confirm` checks again."""
        return self._pod(uid) if uid in self._assumed else None

    def confirm(self, uid: str, node: str, labels: Mapping[str, str]) -> bool:
        """The watch saw our bind: the assumed pod stays, with the labels the watch shows (the API server adds
        the node's topology labels at binding in recent releases; nothing else of a pod changes with its
        binding). False when it is not (or no longer) assumed on that node: then the caller reads the pod."""
        pod = self.assumed_pod(uid)
        if pod is None or pod.node_name != node:
            return False
        del self._assumed[uid]
        if pod.labels != labels:
            self.add_pod(replace(pod, labels=dict(labels)))  # spread and affinity counts follow the new labels
        return True

    def assume(self, pod: PodInfo) -> None:
        """Count a decided pod on its node before its bind is posted."""
        self.add_pod(pod)
        self._assumed[pod.uid] = None

    def finish_binding(self, uid: str) -> None:
        """Its bind succeeded: expire it if the watch never confirms it."""
        if uid in self._assumed:
            self._assumed[uid] = self.clock() + ASSUMED_TTL_SECONDS

    def forget(self, uid: str) -> None:
        """Its bind failed: it no longer takes room."""
        if self._assumed.pop(uid, False) is not False:
            self._remove(uid)

    def expire(self) -> None:
        now = self.clock()
        for uid in [u for u, deadline in self._assumed.items() if deadline is not None and deadline <= now]:
            log.warning("assumed pod %s was never confirmed by the watch; it no longer counts", uid)
            self.forget(uid)

    def assumed(self) -> int:
        return len(self._assumed)

    def _pod(self, uid: str) -> PodInfo | None:
        node = self._where.get(uid)
        info = self.nodes.get(node) if node is not None else None
        return info.pods.get(uid) if info is not None else self._waiting.get(node or "", {}).get(uid)

    def _remove(self, uid: str) -> PodInfo | None:
        node = self._where.pop(uid, None)
        if node is None:
            return None
        info = self.nodes.get(node)
        if info is not None:
            return info.remove_pod(uid)
        waiting = self._waiting.get(node, {})
        pod = waiting.pop(uid, None)
        if not waiting:
            self._waiting.pop(node, None)
        return pod
