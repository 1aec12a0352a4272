"""VolumeZone: a bound PersistentVolume's zone and region labels must match the node's, when the node has any
topology label (framework/plugins/volumezone/volume_zone.go). Unbound WaitForFirstConsumer claims are left out.
"""

from __future__ import annotations

from typing import ClassVar

from kubernetes.client import V1Pod

from policies.framework import SUCCESS, CycleState, Key, NodeInfo, PreFilter, PreFilterSkip, Status, unresolvable
from policies.volumes import (
    WAIT_FOR_FIRST_CONSUMER,
    VolumeObjects,
    claim_not_found,
    class_not_found,
    pod_namespace,
    volume_not_found,
)

CONFLICT = "node(s) had no available volume zone"

BETA_ZONE = "failure-domain.beta.kubernetes.io/zone"
BETA_REGION = "failure-domain.beta.kubernetes.io/region"
ZONE = "topology.kubernetes.io/zone"
REGION = "topology.kubernetes.io/region"
TOPOLOGY_LABELS = (BETA_ZONE, BETA_REGION, ZONE, REGION)
_GA = {BETA_ZONE: ZONE, BETA_REGION: REGION}

# (label key, the values it allows) of each bound volume, or the status the pod fails with.
_TOPOLOGIES: Key[tuple[tuple[str, frozenset[str]], ...] | Status] = Key("VolumeZone topologies", pod_only=True)


def _topologies(pod: V1Pod, state: CycleState) -> tuple[tuple[str, frozenset[str]], ...] | Status:
    """The pod's volumes' topologies, once per pod (none for a pod without claims)."""
    if not _pvc_names(pod):
        return ()
    volumes = state.volumes
    return state.memo(_TOPOLOGIES, lambda: pod_topologies(pod, volumes))


def _pvc_names(pod: V1Pod) -> list[str]:
    volumes = (pod.spec.volumes if pod.spec else None) or ()
    return [v.persistent_volume_claim.claim_name or "" for v in volumes if v.persistent_volume_claim is not None]


def _zones(value: str) -> frozenset[str] | None:
    """cloud-provider's LabelZonesToSet: `__`-separated; None (the label is ignored) when a part is empty."""
    parts = [p.strip() for p in value.split("__")]
    return None if any(not p for p in parts) else frozenset(parts)


def pod_topologies(pod: V1Pod, volumes: VolumeObjects) -> tuple[tuple[str, frozenset[str]], ...] | Status:
    """kube's getPVbyPod."""
    namespace, out = pod_namespace(pod), []
    for name in _pvc_names(pod):
        if not name:
            return unresolvable("PersistentVolumeClaim had no name")
        claim = volumes.claims.get(f"{namespace}/{name}")
        if claim is None:
            return unresolvable(claim_not_found(name))
        if not claim.volume_name:
            if not claim.storage_class:
                return unresolvable("PersistentVolumeClaim had no pv name and storageClass name")
            storage_class = volumes.classes.get(claim.storage_class)
            if storage_class is None:
                return unresolvable(class_not_found(claim.storage_class))
            if storage_class.binding_mode is None:
                return unresolvable(f'VolumeBindingMode not set for StorageClass "{claim.storage_class}"')
            if storage_class.binding_mode == WAIT_FOR_FIRST_CONSUMER:
                continue
            return unresolvable("PersistentVolume had no name")
        volume = volumes.volumes.get(claim.volume_name)
        if volume is None:
            return unresolvable(volume_not_found(claim.volume_name))
        for key in TOPOLOGY_LABELS:
            if key in volume.labels and (zones := _zones(volume.labels[key])) is not None:
                out.append((key, zones))
    return tuple(out)


class VolumeZone(PreFilterSkip, PreFilter):
    name = "VolumeZone"
    node_only: ClassVar[bool] = False

    def skips(self, pod: V1Pod, state: CycleState) -> bool:
        topologies = _topologies(pod, state)
        return not isinstance(topologies, Status) and not topologies

    def prefilter(self, pod: V1Pod, state: CycleState) -> Status:
        topologies = _topologies(pod, state)
        return topologies if isinstance(topologies, Status) else SUCCESS

    def filter(self, pod: V1Pod, node: NodeInfo, state: CycleState) -> Status:
        topologies = _topologies(pod, state)
        if isinstance(topologies, Status):
            return topologies
        labels = node.labels
        if not any(key in labels for key in TOPOLOGY_LABELS):
            return SUCCESS  # a single-zone cluster's nodes may have no topology labels
        for key, zones in topologies:
            value = labels.get(key, labels.get(_GA.get(key, key)))
            if value is None or value not in zones:
                return unresolvable(CONFLICT)
        return SUCCESS
