"""VolumeBinding's PreFilter and Filter (framework/plugins/volumebinding/volume_binding.go, binder.go): every
claim of the pod must exist (not lost, not being deleted; a generic ephemeral volume's claim owned by the pod);
an unbound claim of an Immediate class rejects the pod; a bound claim's PersistentVolume must exist and its node
affinity match the node.

Not here yet: binding unbound WaitForFirstConsumer claims (kube's findMatchingVolumes / checkVolumeProvisions and
the binder's PreBind). Such a claim rejects the pod with a message of this scheduler's own, unless it already has
a selected node (then only that node fits, as in kube, and the provisioner binds it while the kubelet waits).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from kubernetes.client import V1NodeSelectorTerm, V1Pod

from policies.framework import SUCCESS, Code, CycleState, Key, NodeInfo, PreFilter, PreFilterSkip, Status, unresolvable
from policies.node_affinity import requirement_matches
from policies.volumes import (
    WAIT_FOR_FIRST_CONSUMER,
    Claim,
    VolumeObjects,
    claim_not_found,
    has_claims,
    not_for_pod,
    pod_claims,
    pod_namespace,
)

UNBOUND_IMMEDIATE = "pod has unbound immediate PersistentVolumeClaims"
# binder.go's ConflictReasons, in the order FindPodVolumes reports them.
NODE_CONFLICT = "node(s) didn't match PersistentVolume's node affinity"
BIND_CONFLICT = "node(s) didn't find available persistent volumes to bind"
PV_NOT_EXIST = "node(s) unavailable due to one or more pvc(s) bound to non-existent pv(s)"


def waits_for_binding(claim: Claim) -> str:
    """This scheduler's own reason (kube would bind the claim): see the module's docstring."""
    return (
        f'persistentvolumeclaim "{claim.name}" waits for its first consumer: my-scheduler does not bind '
        "WaitForFirstConsumer claims yet"
    )


@dataclass(frozen=True, slots=True)
class PodVolumeClaims:
    """kube's PodVolumeClaims: the pod's bound claims, and its unbound WaitForFirstConsumer ones."""

    bound: tuple[Claim, ...]
    delayed: tuple[Claim, ...]


_CLAIMS: Key[PodVolumeClaims | Status] = Key("VolumeBinding claims", pod_only=True)


def _claim_problem(pod: V1Pod, volumes: VolumeObjects) -> str | None:
    """kube's podHasPVCs: the first claim that is missing, lost, being deleted or not the pod's own."""
    namespace = pod_namespace(pod)
    for wanted in pod_claims(pod):
        claim = volumes.claims.get(f"{namespace}/{wanted.name}")
        if claim is None:
            if wanted.ephemeral:  # normal right after the pod was created
                return f'waiting for ephemeral volume controller to create the persistentvolumeclaim "{wanted.name}"'
            return claim_not_found(wanted.name)
        if claim.lost:
            return f'persistentvolumeclaim "{claim.name}" bound to non-existent persistentvolume "{claim.volume_name}"'
        if claim.deleting:
            return f'persistentvolumeclaim "{claim.name}" is being deleted'
        if wanted.ephemeral and (message := not_for_pod(claim, pod)):
            return message
    return None


def pod_volume_claims(pod: V1Pod, volumes: VolumeObjects) -> PodVolumeClaims | Status:
    """kube's PreFilter: the pod's claims sorted into bound and delayed, or the status rejecting the pod."""
    if (problem := _claim_problem(pod, volumes)) is not None:
        return unresolvable(problem)
    namespace = pod_namespace(pod)
    bound, delayed = [], []
    immediate = False
    for wanted in pod_claims(pod):
        claim = volumes.claims[f"{namespace}/{wanted.name}"]
        if claim.bound:
            bound.append(claim)
            continue
        # kube's IsDelayBindingMode: no class, or an unknown one, binds immediately.
        storage_class = volumes.classes.get(claim.storage_class) if claim.storage_class else None
        if storage_class is not None and storage_class.binding_mode is None:
            return Status(Code.ERROR, (f'VolumeBindingMode not set for StorageClass "{claim.storage_class}"',))
        delay = storage_class is not None and storage_class.binding_mode == WAIT_FOR_FIRST_CONSUMER
        if delay and not claim.volume_name:
            delayed.append(claim)
        else:  # prebound claims count as unbound immediate ones
            immediate = True
    if immediate:
        return unresolvable(UNBOUND_IMMEDIATE)
    unsupported = next((c for c in delayed if c.selected_node is None), None)
    if unsupported is not None:
        return unresolvable(waits_for_binding(unsupported))
    return PodVolumeClaims(tuple(bound), tuple(delayed))


def node_affinity_matches(terms: Sequence[V1NodeSelectorTerm] | None, labels: Mapping[str, str]) -> bool:
    """component-helpers' CheckNodeAffinity: the terms are matched against a node that has only the labels (so a
    matchFields term on metadata.name matches no name but the empty one)."""
    if terms is None:
        return True
    fields = {"metadata.name": ""}
    return any(
        (t.match_expressions or t.match_fields)
        and all(requirement_matches(r, labels) for r in t.match_expressions or ())
        and all(r.key == "metadata.name" and requirement_matches(r, fields) for r in t.match_fields or ())
        for t in terms
    )


class VolumeBinding(PreFilterSkip, PreFilter):
    name = "VolumeBinding"
    node_only: ClassVar[bool] = False

    def skips(self, pod: V1Pod, state: CycleState) -> bool:
        return not has_claims(pod)

    def prefilter(self, pod: V1Pod, state: CycleState) -> Status:
        if not has_claims(pod):
            return SUCCESS
        volumes = state.volumes
        claims = state.memo(_CLAIMS, lambda: pod_volume_claims(pod, volumes))
        return claims if isinstance(claims, Status) else SUCCESS

    def filter(self, pod: V1Pod, node: NodeInfo, state: CycleState) -> Status:
        if not has_claims(pod):
            return SUCCESS
        volumes = state.volumes
        claims = state.memo(_CLAIMS, lambda: pod_volume_claims(pod, volumes))
        if isinstance(claims, Status):
            return claims
        reasons = []
        for claim in claims.bound:  # kube's checkBoundClaims: stops at the first volume that is missing or off
            volume = volumes.volumes.get(claim.volume_name)
            if volume is None:
                reasons.append(PV_NOT_EXIST)
                break
            if not node_affinity_matches(volume.node_terms, node.labels):
                reasons.append(NODE_CONFLICT)
                break
        if any(c.selected_node != node.name for c in claims.delayed):
            reasons.insert(1 if reasons and reasons[0] == NODE_CONFLICT else 0, BIND_CONFLICT)
        return unresolvable(*reasons) if reasons else SUCCESS
