"""Small builders for the kubernetes client models and the framework's views, so a test case stays a line or two.

Everything goes through `from_dict` with the API's camelCase spelling, the way objects arrive from the server.
One `pod()` and one `node()`; `node_term()` is a node selector term, `pod_term()` a pod (anti-)affinity term.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

from kubernetes.client import V1LabelSelector, V1Node, V1Pod, V1Taint, V1Toleration

from policies.framework import (
    ClusterObjects,
    CycleState,
    FilterPlugin,
    NodeInfo,
    PreFilter,
    ScorePlugin,
    Status,
    WorkloadSelectors,
    normalise,
)
from policies.node_table import NodeList, NodeTable
from policies.volumes import BIND_COMPLETED, SELECTED_NODE, Claim, StorageClass, Volume, VolumeObjects

Json = dict[str, Any]

_T = TypeVar("_T")

HOSTNAME = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"


class Clock:
    """A clock the test moves by hand (`clock.now += 5`), for the daemon's injectable clocks."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def made(model: _T | None) -> _T:
    """What a client model's `from_dict` made: the client types it optional, though a dict always makes one."""
    assert model is not None
    return model


def taint(key: str, effect: str = "NoSchedule", value: str | None = None) -> V1Taint:
    return V1Taint(key=key, effect=effect, value=value)


def tol(
    key: str | None = None, op: str | None = None, value: str | None = None, effect: str | None = None
) -> V1Toleration:
    return V1Toleration(key=key, operator=op, value=value, effect=effect)


def port(host_port: int, *, protocol: str | None = None, ip: str | None = None, container_port: int = 8080) -> Json:
    """A container port claiming `host_port` on the node (0 claims nothing)."""
    out: Json = {"containerPort": container_port, "hostPort": host_port}
    if protocol is not None:
        out["protocol"] = protocol
    if ip is not None:
        out["hostIP"] = ip
    return out


def container(
    cpu: str | None = None,
    memory: str | None = None,
    *,
    ports: Sequence[Json] = (),
    sidecar: bool = False,
    name: str = "c",
    extended: Mapping[str, str] | None = None,
) -> Json:
    """A container asking for `cpu`/`memory` and `extended` resources (`{"nvidia.com/gpu": "1"}`).
    `sidecar=True` makes it a restartable init container."""
    requests = {k: v for k, v in {"cpu": cpu, "memory": memory, **(extended or {})}.items() if v is not None}
    out: Json = {"name": name, "image": "pause"}
    if requests:
        out["resources"] = {"requests": requests}
    if ports:
        out["ports"] = list(ports)
    if sidecar:
        out["restartPolicy"] = "Always"
    return out


def sidecar(cpu: str | None = None, memory: str | None = None, **kwargs: Any) -> Json:
    return container(cpu, memory, sidecar=True, **kwargs)


def expr(key: str, op: str, *values: str) -> Json:
    """A requirement of a node selector term or a label selector."""
    out: Json = {"key": key, "operator": op}
    if values:
        out["values"] = list(values)
    return out


def node_term(*expressions: Json, fields: Sequence[Json] = ()) -> Json:
    """A node selector term: its expressions (and fields) are AND-ed."""
    out: Json = {}
    if expressions:
        out["matchExpressions"] = list(expressions)
    if fields:
        out["matchFields"] = list(fields)
    return out


def selector(match_labels: Mapping[str, str] | None = None, *expressions: Json) -> Json:
    out: Json = {}
    if match_labels is not None:
        out["matchLabels"] = dict(match_labels)
    if expressions:
        out["matchExpressions"] = list(expressions)
    return out


def label_selector(match_labels: Mapping[str, str] | None = None, *expressions: Json) -> V1LabelSelector:
    return made(V1LabelSelector.from_dict(selector(match_labels, *expressions)))


def spread(
    key: str = ZONE,
    max_skew: int = 1,
    when: str = "DoNotSchedule",
    match: Mapping[str, str] | Json | None = None,
    **extra: Any,
) -> Json:
    """A topology spread constraint; `match` is matchLabels, or a full selector if it has matchLabels/…Expressions."""
    constraint: Json = {"maxSkew": max_skew, "topologyKey": key, "whenUnsatisfiable": when, **extra}
    if match is not None:
        full = isinstance(match, dict) and ("matchLabels" in match or "matchExpressions" in match)
        constraint["labelSelector"] = match if full else selector(match)
    return constraint


def pod_term(key: str = HOSTNAME, match: Mapping[str, str] | None = None, **extra: Any) -> Json:
    """A pod (anti-)affinity term; `match` is matchLabels (None: no labelSelector at all)."""
    out: Json = {"topologyKey": key, **extra}
    if match is not None:
        out["labelSelector"] = selector(match)
    return out


def pod(
    name: str = "p",
    *,
    namespace: str = "default",
    cpu: str | None = None,
    memory: str | None = None,
    containers: Sequence[Json] | None = None,
    init: Sequence[Json] = (),
    overhead: Mapping[str, str] | None = None,
    tolerations: Iterable[V1Toleration] = (),
    node_selector: Mapping[str, str] | None = None,
    required: Sequence[Json] | None = None,
    preferred: Sequence[tuple[int, Json]] = (),
    host_ports: Sequence[Json] = (),
    owner: str | None = None,
    owner_is_controller: bool = True,
    labels: Mapping[str, str] | None = None,
    node_name: str | None = None,
    spread: Sequence[Json] = (),
    affinity: Sequence[Json] = (),
    anti_affinity: Sequence[Json] = (),
    preferred_affinity: Sequence[tuple[int, Json]] = (),
    preferred_anti_affinity: Sequence[tuple[int, Json]] = (),
    resources: Mapping[str, str] | None = None,
    deleting: bool = False,
    extended: Mapping[str, str] | None = None,
    claims: Sequence[str] = (),
    ephemeral: Sequence[str] = (),
) -> V1Pod:
    """A pod; without `containers`, one container asking for `cpu`, `memory`, `extended` with `host_ports`.
    `required` are the required node affinity terms (OR-ed), `preferred` (weight, term) pairs; `affinity` and
    `anti_affinity` the required pod (anti-)affinity terms (`pod_term`), `spread` its topology spread
    constraints, `preferred_affinity`/`preferred_anti_affinity` (weight, `pod_term`) pairs; `resources` its
    pod-level requests; `node_name` puts it on a node; `claims` are persistentVolumeClaim volumes (by claim
    name), `ephemeral` generic ephemeral volumes (by volume name: the claim is `<pod>-<volume>`)."""
    if containers is None:
        containers = [container(cpu, memory, ports=host_ports, extended=extended)]
    containers = [{**c, "name": f"c{i}"} for i, c in enumerate(containers)]
    spec: Json = {"containers": containers}
    if init:
        spec["initContainers"] = [{**c, "name": f"init{i}"} for i, c in enumerate(init)]
    if overhead:
        spec["overhead"] = dict(overhead)
    tolerations = list(tolerations)
    if tolerations:
        spec["tolerations"] = [_json(t, "key", "operator", "value", "effect") for t in tolerations]
    if node_selector is not None:
        spec["nodeSelector"] = dict(node_selector)
    node_affinity: Json = {}
    if required is not None:
        node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {"nodeSelectorTerms": list(required)}
    if preferred:
        node_affinity["preferredDuringSchedulingIgnoredDuringExecution"] = [
            {"weight": w, "preference": t} for w, t in preferred
        ]
    pod_affinity: Json = {}
    if node_affinity:
        pod_affinity["nodeAffinity"] = node_affinity
    for kind, hard, soft in (
        ("podAffinity", affinity, preferred_affinity),
        ("podAntiAffinity", anti_affinity, preferred_anti_affinity),
    ):
        section: Json = {}
        if hard:
            section["requiredDuringSchedulingIgnoredDuringExecution"] = list(hard)
        if soft:
            section["preferredDuringSchedulingIgnoredDuringExecution"] = [
                {"weight": w, "podAffinityTerm": t} for w, t in soft
            ]
        if section:
            pod_affinity[kind] = section
    if pod_affinity:
        spec["affinity"] = pod_affinity
    if spread:
        spec["topologySpreadConstraints"] = list(spread)
    if node_name:
        spec["nodeName"] = node_name
    if resources is not None:
        spec["resources"] = {"requests": dict(resources)}
    volumes = [{"name": f"v{i}", "persistentVolumeClaim": {"claimName": c}} for i, c in enumerate(claims)]
    volumes += [{"name": v, "ephemeral": {"volumeClaimTemplate": {"spec": {}}}} for v in ephemeral]
    if volumes:
        spec["volumes"] = volumes
    metadata: Json = {"name": name, "namespace": namespace, "uid": f"uid-{namespace}-{name}"}
    if labels:
        metadata["labels"] = dict(labels)
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    if owner is not None:
        metadata["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "name": owner,
                "uid": owner,
                "controller": owner_is_controller,
            }
        ]
    return made(V1Pod.from_dict({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}))


def _json(model: V1Toleration | V1Taint, *fields: str) -> Json:
    """The set fields of a one-word-field model, as the API spells them."""
    return {f: getattr(model, f) for f in fields if getattr(model, f) is not None}


_READY = {True: "True", False: "False"}


def node(
    name: str = "n1",
    *,
    cpu: str | None = "4",
    memory: str | None = "8Gi",
    pods: str | None = "110",
    labels: Mapping[str, str] | None = None,
    taints: Iterable[V1Taint] = (),
    ready: bool | str | None = True,
    unschedulable: bool | None = None,
    extended: Mapping[str, str] | None = None,
    capacity_only: bool = False,
    images: Mapping[str, int] | None = None,
) -> V1Node:
    """A node with `cpu`/`memory`/`pods` allocatable (None leaves one out). `ready` is True/False, a condition
    status such as "Unknown", or None for no Ready condition. `capacity_only` leaves allocatable unset; `images`
    are status.images (name → size in bytes)."""
    resources = {k: v for k, v in {"cpu": cpu, "memory": memory, "pods": pods, **(extended or {})}.items() if v}
    status: Json = {"capacity": resources} if capacity_only else {"capacity": resources, "allocatable": resources}
    if images:
        status["images"] = [{"names": [name], "sizeBytes": size} for name, size in images.items()]
    if ready is not None:
        status["conditions"] = [{"type": "Ready", "status": _READY[ready] if isinstance(ready, bool) else ready}]
    spec: Json = {}
    taints = list(taints)
    if taints:
        spec["taints"] = [_json(t, "key", "value", "effect") for t in taints]
    if unschedulable is not None:
        spec["unschedulable"] = unschedulable
    metadata: Json = {"name": name, "labels": {"kubernetes.io/hostname": name, **(labels or {})}}
    manifest = {"apiVersion": "v1", "kind": "Node", "metadata": metadata, "spec": spec, "status": status}
    return made(V1Node.from_dict(manifest))


def node_info(n: V1Node | None = None, pods: Iterable[V1Pod] = ()) -> NodeInfo:
    return NodeInfo.of(n if n is not None else node(), pods)


def held(nodes: Sequence[NodeInfo]) -> NodeList:
    """The nodes as the cache holds them: all of one NodeTable, whose rows and kept sums (`tally`) the policies
    then read instead of going node by node."""
    table = NodeTable()
    for n in nodes:
        table.add(n)
    return NodeList(nodes, table)


def node_with_pods(name: str, *, pods: Iterable[V1Pod] = (), **kwargs: Any) -> NodeInfo:
    """node(name, **kwargs) as the framework sees it, with `pods` assigned to it."""
    return node_info(node(name, **kwargs), pods)


def zone_nodes(**pods_per_node: tuple[str, Sequence[V1Pod]]) -> list[NodeInfo]:
    """zone_nodes(a=("z1", [pods]), b=("z2", [])) → nodes a, b in zones z1, z2."""
    return [node_with_pods(n, labels={ZONE: z}, pods=ps) for n, (z, ps) in pods_per_node.items()]


def state(*nodes: NodeInfo) -> CycleState:
    return CycleState(list(nodes))


def filter_reasons(plugin: FilterPlugin, p: V1Pod, nodes: Sequence[NodeInfo]) -> dict[str, str | None]:
    """node name → the first failure reason, or None where the pod fits."""
    cycle = CycleState(nodes)
    out: dict[str, str | None] = {}
    for n in nodes:
        status = plugin.filter(p, n, cycle)
        out[n.name] = None if status.ok else status.reasons[0]
    return out


def feasible(plugin: FilterPlugin, p: V1Pod, nodes: Sequence[NodeInfo]) -> list[str]:
    return [name for name, reason in filter_reasons(plugin, p, nodes).items() if reason is None]


def scores(plugin: ScorePlugin, p: V1Pod, nodes: Sequence[NodeInfo]) -> dict[str, float]:
    """node name → the plugin's normalised 0..100 score over `nodes` (all of them feasible)."""
    cycle = CycleState(nodes)
    values = normalise([plugin.score(p, n, cycle) for n in nodes], plugin.normalize)
    return {n.name: v for n, v in zip(nodes, values, strict=True)}


# --- storage objects (policies/volumes.py records, made from the API's JSON as the cache makes them) ---------


def claim(
    name: str,
    *,
    namespace: str = "default",
    volume: str | None = None,
    bound: bool | None = None,
    storage_class: str | None = None,
    modes: Sequence[str] = ("ReadWriteOnce",),
    phase: str | None = None,
    deleting: bool = False,
    owner_uid: str | None = None,
    selected_node: str | None = None,
    request: str = "1Gi",
) -> Claim:
    """A claim; `volume` is spec.volumeName, and the claim counts as bound (bind-completed) when it has one
    unless `bound=False`."""
    annotations = {}
    if volume and bound is not False:
        annotations[BIND_COMPLETED] = "yes"
    if selected_node:
        annotations[SELECTED_NODE] = selected_node
    meta: Json = {"name": name, "namespace": namespace, "annotations": annotations, "uid": f"uid-{namespace}-{name}"}
    if deleting:
        meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    if owner_uid:
        meta["ownerReferences"] = [
            {"apiVersion": "v1", "kind": "Pod", "name": "x", "uid": owner_uid, "controller": True}
        ]
    spec: Json = {"accessModes": list(modes), "resources": {"requests": {"storage": request}}}
    if volume:
        spec["volumeName"] = volume
    if storage_class:
        spec["storageClassName"] = storage_class
    return Claim.of({"metadata": meta, "spec": spec, "status": {"phase": phase} if phase else {}})


def volume(
    name: str,
    *,
    labels: Mapping[str, str] | None = None,
    terms: Sequence[Json] | None = None,
    csi: tuple[str, str] | None = None,
    capacity: str = "1Gi",
    storage_class: str | None = None,
    modes: Sequence[str] = ("ReadWriteOnce",),
    phase: str = "Available",
    claimed_by: str | None = None,
) -> Volume:
    """A PersistentVolume; `terms` are its required node affinity's node selector terms (`node_term`);
    `claimed_by` ("namespace/name") is its claimRef."""
    spec: Json = {"capacity": {"storage": capacity}, "accessModes": list(modes)}
    if storage_class:
        spec["storageClassName"] = storage_class
    if claimed_by:
        namespace, claim_name = claimed_by.split("/")
        spec["claimRef"] = {"namespace": namespace, "name": claim_name}
    if terms is not None:
        spec["nodeAffinity"] = {"required": {"nodeSelectorTerms": list(terms)}}
    if csi is not None:
        spec["csi"] = {"driver": csi[0], "volumeHandle": csi[1]}
    return Volume.of(
        {"metadata": {"name": name, "labels": dict(labels or {})}, "spec": spec, "status": {"phase": phase}}
    )


def storage_class(
    name: str,
    mode: str | None = "Immediate",
    provisioner: str = "csi.example.com",
    allowed: Mapping[str, Sequence[str]] | None = None,
) -> StorageClass:
    """A StorageClass; `allowed` is one allowedTopologies term (label key → values)."""
    obj: Json = {"metadata": {"name": name}, "provisioner": provisioner, "volumeBindingMode": mode}
    if allowed:
        obj["allowedTopologies"] = [
            {"matchLabelExpressions": [{"key": k, "values": list(v)} for k, v in allowed.items()]}
        ]
    return StorageClass.of(obj)


def volume_objects(
    *objects: Claim | Volume | StorageClass, csi_nodes: Mapping[str, Mapping[str, int]] | None = None
) -> VolumeObjects:
    return VolumeObjects(
        claims={f"{o.namespace}/{o.name}": o for o in objects if isinstance(o, Claim)},
        volumes={o.name: o for o in objects if isinstance(o, Volume)},
        classes={o.name: o for o in objects if isinstance(o, StorageClass)},
        csi_nodes=csi_nodes or {},
    )


def with_volumes(volumes: VolumeObjects) -> ClusterObjects:
    return ClusterObjects({}, WorkloadSelectors(), {}, volumes)


def verdicts(plugin: FilterPlugin, p: V1Pod, nodes: Sequence[NodeInfo], volumes: VolumeObjects) -> dict[str, Status]:
    """node name → the plugin's status there, its PreFilter's (kube's) when that rejects the pod."""
    cycle = CycleState(nodes, with_volumes(volumes))
    if isinstance(plugin, PreFilter) and not (rejected := plugin.prefilter(p, cycle)).ok:
        return {n.name: rejected for n in nodes}
    return {n.name: plugin.filter(p, n, cycle) for n in nodes}
