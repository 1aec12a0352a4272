"""NodeVolumeLimits: a node takes no more volumes of a CSI driver than its CSINode's `allocatable.count` for that
driver, counting each volume once however many of its pods use it (framework/plugins/nodevolumelimits/csi.go).
"""

from __future__ import annotations

from collections import Counter
from typing import ClassVar

from kubernetes.client import V1Pod

from policies.framework import SUCCESS, Code, CycleState, Key, NodeInfo, PreFilterSkip, Status, unresolvable
from policies.framework import unschedulable as unschedulable_status
from policies.volumes import Claim, VolumeObjects, claim_not_found, has_claims, not_for_pod, pod_claims, pod_namespace

MAX_VOLUME_COUNT_EXCEEDED = "node(s) exceed max volume count"
# kube prefixes the handle of a volume still to be provisioned with a random string, so that it is never taken for
# an existing volume; a fixed one does the same here.
_PROVISIONED = "my-scheduler-to-provision"

# The pod's CSI volumes ("driver/handle" → driver), or the status the pod fails with on every node.
_NEW: Key[dict[str, str] | Status] = Key("NodeVolumeLimits new volumes", pod_only=True)


def csi_volume(claim: Claim, volumes: VolumeObjects) -> tuple[str, str] | None:
    """kube's getCSIDriverInfo: (driver, handle) of the claim's bound CSI volume, else its StorageClass's
    provisioner for a volume to be provisioned. In-tree volumes migrated to CSI are not translated here."""
    if claim.volume_name:
        volume = volumes.volumes.get(claim.volume_name)
        if volume is not None:
            return volume.csi
    storage_class = volumes.classes.get(claim.storage_class) if claim.storage_class else None
    if storage_class is None:
        return None  # no class: an Immediate claim, bound before scheduling; not counted (as kube)
    return storage_class.provisioner, f"{_PROVISIONED}-{claim.namespace}/{claim.name}"


def _new_volumes(pod: V1Pod, volumes: VolumeObjects) -> dict[str, str] | Status:
    namespace, out = pod_namespace(pod), {}
    for wanted in pod_claims(pod):
        if not wanted.name:
            return Status(Code.ERROR, ("PersistentVolumeClaim had no name",))
        claim = volumes.claims.get(f"{namespace}/{wanted.name}")
        if claim is None:
            # kube: "PVC is not found. This Pod will never be schedulable until PVC is created."
            return unresolvable(f"looking up PVC {namespace}/{wanted.name}: {claim_not_found(wanted.name)}")
        if wanted.ephemeral and (message := not_for_pod(claim, pod)):
            return Status(Code.ERROR, (message,))
        csi = csi_volume(claim, volumes)
        if csi is not None and csi[0] and csi[1]:
            out[f"{csi[0]}/{csi[1]}"] = csi[0]
    return out


class NodeVolumeLimits(PreFilterSkip):
    name = "NodeVolumeLimits"
    node_only: ClassVar[bool] = False

    def skips(self, pod: V1Pod, state: CycleState) -> bool:
        return not has_claims(pod)  # kube's PreFilter: no PVC, no ephemeral volume (no in-tree inline ones here)

    def filter(self, pod: V1Pod, node: NodeInfo, state: CycleState) -> Status:
        if not has_claims(pod):
            return SUCCESS
        volumes = state.volumes
        new = state.memo(_NEW, lambda: _new_volumes(pod, volumes))
        if isinstance(new, Status):
            return new
        limits = volumes.csi_nodes.get(node.name)
        if not new or not limits:
            return SUCCESS
        attached: dict[str, str] = {}
        for key in node.claim_refs:
            claim = volumes.claims.get(key)
            csi = csi_volume(claim, volumes) if claim is not None else None  # an unknown claim is not counted
            if csi is not None and csi[0] and csi[1]:
                attached[f"{csi[0]}/{csi[1]}"] = csi[0]
        adding = Counter(driver for unique, driver in new.items() if unique not in attached)
        counted = Counter(attached.values())
        for driver, count in adding.items():
            limit = limits.get(driver)
            if limit is not None and counted[driver] + count > limit:
                return unschedulable_status(MAX_VOLUME_COUNT_EXCEEDED)
        return SUCCESS
