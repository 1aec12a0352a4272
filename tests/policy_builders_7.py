"""Small builders for the PodTopologySpread, InterPodAffinity and BalancedAllocation tables: a case is a
line or two. Objects are built from the API's JSON shape (camelCase), as the scheduler reads them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from kubernetes.client import V1LabelSelector, V1Node, V1Pod

from policies.framework import CycleState, FilterPlugin, NodeInfo, ScorePlugin, normalise

HOSTNAME = "kubernetes.io/hostname"
ZONE = "topology.kubernetes.io/zone"


def selector(match_labels: Mapping[str, str] | None = None, *expressions: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if match_labels is not None:
        out["matchLabels"] = dict(match_labels)
    if expressions:
        out["matchExpressions"] = list(expressions)
    return out


def expr(key: str, operator: str, *values: str) -> dict[str, Any]:
    return {"key": key, "operator": operator, **({"values": list(values)} if values else {})}


def label_selector(match_labels: Mapping[str, str] | None = None, *expressions: dict[str, Any]) -> V1LabelSelector:
    return V1LabelSelector.from_dict(selector(match_labels, *expressions))


def spread(
    key: str = ZONE,
    max_skew: int = 1,
    when: str = "DoNotSchedule",
    match: Mapping[str, str] | dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A topology spread constraint; `match` is matchLabels, or a full selector if it has matchLabels/…Expressions."""
    constraint: dict[str, Any] = {"maxSkew": max_skew, "topologyKey": key, "whenUnsatisfiable": when, **extra}
    if match is not None:
        full = isinstance(match, dict) and ("matchLabels" in match or "matchExpressions" in match)
        constraint["labelSelector"] = match if full else selector(match)
    return constraint


def term(key: str = HOSTNAME, match: Mapping[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    """A pod (anti-)affinity term; `match` is matchLabels (None: no labelSelector at all)."""
    out: dict[str, Any] = {"topologyKey": key, **extra}
    if match is not None:
        out["labelSelector"] = selector(match)
    return out


def pod(
    name: str = "p",
    *,
    namespace: str = "default",
    labels: Mapping[str, str] | None = None,
    cpu: str | None = None,
    memory: str | None = None,
    node_name: str | None = None,
    spread: Sequence[dict[str, Any]] = (),
    affinity: Sequence[dict[str, Any]] = (),
    anti_affinity: Sequence[dict[str, Any]] = (),
    node_selector: Mapping[str, str] | None = None,
    tolerations: Sequence[dict[str, Any]] = (),
    deleting: bool = False,
) -> V1Pod:
    requests = {k: v for k, v in {"cpu": cpu, "memory": memory}.items() if v}
    spec: dict[str, Any] = {"containers": [{"name": "c", "resources": {"requests": requests}}]}
    if node_name:
        spec["nodeName"] = node_name
    if spread:
        spec["topologySpreadConstraints"] = list(spread)
    pod_affinity: dict[str, Any] = {}
    if affinity:
        pod_affinity["podAffinity"] = {"requiredDuringSchedulingIgnoredDuringExecution": list(affinity)}
    if anti_affinity:
        pod_affinity["podAntiAffinity"] = {"requiredDuringSchedulingIgnoredDuringExecution": list(anti_affinity)}
    if pod_affinity:
        spec["affinity"] = pod_affinity
    if node_selector:
        spec["nodeSelector"] = dict(node_selector)
    if tolerations:
        spec["tolerations"] = list(tolerations)
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "labels": dict(labels or {})}
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return V1Pod.from_dict({"metadata": metadata, "spec": spec})


def node(
    name: str,
    *,
    labels: Mapping[str, str] | None = None,
    cpu: str = "4",
    memory: str = "16Gi",
    pods: Iterable[V1Pod] = (),
    taints: Sequence[dict[str, str]] = (),
) -> NodeInfo:
    """A node labelled with its hostname (as the kubelet does) plus `labels`, with `pods` assigned to it."""
    manifest = {
        "metadata": {"name": name, "labels": {HOSTNAME: name, **(labels or {})}},
        "spec": {"taints": list(taints)},
        "status": {
            "allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }
    return NodeInfo.of(V1Node.from_dict(manifest), pods)


def zone_nodes(**pods_per_node: tuple[str, Sequence[V1Pod]]) -> list[NodeInfo]:
    """zone_nodes(a=("z1", [pods]), b=("z2", [])) → nodes a, b in zones z1, z2."""
    return [node(n, labels={ZONE: z}, pods=ps) for n, (z, ps) in pods_per_node.items()]


def filter_reasons(plugin: FilterPlugin, p: V1Pod, nodes: Sequence[NodeInfo]) -> dict[str, str | None]:
    """node name → the first failure reason, or None where the pod fits."""
    state = CycleState(nodes)
    out: dict[str, str | None] = {}
    for n in nodes:
        status = plugin.filter(p, n, state)
        out[n.name] = None if status.ok else status.reasons[0]
    return out


def feasible(plugin: FilterPlugin, p: V1Pod, nodes: Sequence[NodeInfo]) -> list[str]:
    return [name for name, reason in filter_reasons(plugin, p, nodes).items() if reason is None]


def scores(plugin: ScorePlugin, p: V1Pod, nodes: Sequence[NodeInfo]) -> dict[str, float]:
    """node name → the plugin's normalised 0..100 score, as the framework computes it."""
    state = CycleState(nodes)
    values = normalise([plugin.score(p, n, state) for n in nodes], plugin.normalize)
    return {n.name: v for n, v in zip(nodes, values, strict=True)}
