"""VolumeBinding's PreFilter and Filter (framework/plugins/volumebinding/volume_binding.go, binder.go): every
claim of the pod must exist (not lost, not being deleted; a generic ephemeral volume's claim owned by the pod);
an unbound claim of an Immediate class rejects the pod; a bound claim's PersistentVolume must exist and its node
affinity match the node; an unbound WaitForFirstConsumer claim needs an available PersistentVolume that fits
the node (kube's findMatchingVolumes: the smallest), else a class that can provision there (checkVolumeProvisions:
a provisioner, allowedTopologies). `pod_volumes` is what the binder then writes for the chosen node (scheduler.py:
claimRef on the volume, the selected node on a claim to provision), before the pod's Binding.

Not here: CSIStorageCapacity (kube's storage capacity check) and VolumeBinding's Score.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

from kubernetes.client import V1NodeSelectorTerm, V1Pod

from policies.framework import SUCCESS, Code, CycleState, Key, NodeInfo, PreFilter, PreFilterSkip, Status, unresolvable
from policies.labels import matches as selector_matches
from policies.node_affinity import requirement_matches
from policies.volumes import (
    NO_PROVISIONER,
    WAIT_FOR_FIRST_CONSUMER,
    Claim,
    Volume,
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


@dataclass(frozen=True, slots=True)
class PodVolumeClaims:
    """kube's PodVolumeClaims: the pod's bound claims, its unbound WaitForFirstConsumer ones, and the volumes of
    those claims' classes (name order, so ties between equal volumes go the same way every time)."""

    bound: tuple[Claim, ...]
    delayed: tuple[Claim, ...]
    candidates: Mapping[str, tuple[Volume, ...]]


@dataclass(frozen=True, slots=True)
class PodVolumes:
    """kube's PodVolumes for one node: the claims to bind to an available volume, and the claims to provision."""

    static: tuple[tuple[Claim, Volume], ...] = ()
    provision: tuple[Claim, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.static or self.provision)


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
    classes = {c.storage_class for c in delayed}
    candidates = {
        name: tuple(sorted((v for v in volumes.volumes.values() if v.storage_class == name), key=lambda v: v.name))
        for name in classes
    }
    return PodVolumeClaims(tuple(bound), tuple(delayed), candidates)


def matching_volume(
    claim: Claim, candidates: Sequence[Volume], labels: Mapping[str, str], taken: set[str]
) -> Volume | None:
    """component-helpers' FindMatchingVolume on the scheduler's path: a volume already bound to the claim if it
    fits the node (else none), otherwise the smallest available one of the claim's class, size, mode and access
    modes that fits the node and the claim's selector."""
    smallest = None
    for volume in candidates:
        if volume.name in taken or (volume.claim_ref is not None and not volume.bound_to(claim)):
            continue
        if volume.capacity < claim.request or volume.volume_mode != claim.volume_mode or volume.deleting:
            continue
        if volume.attributes_class != claim.attributes_class:
            continue
        fits = node_affinity_matches(volume.node_terms, labels)
        if volume.bound_to(claim):
            return volume if fits else None
        if not volume.available or (claim.selector is not None and not selector_matches(claim.selector, volume.labels)):
            continue
        if volume.storage_class != claim.storage_class or not fits or not claim.access_modes <= volume.access_modes:
            continue
        if smallest is None or volume.capacity < smallest.capacity:
            smallest = volume
    return smallest


def pod_volumes(claims: PodVolumeClaims, node: NodeInfo, volumes: VolumeObjects) -> PodVolumes | Status:
    """kube's FindPodVolumes for one node: what to bind and provision there, or the status saying why the node
    does not fit (its ConflictReasons, UnschedulableAndUnresolvable), or an ERROR status."""
    reasons = []
    for claim in claims.bound:  # kube's checkBoundClaims: stops at the first volume that is missing or off
        volume = volumes.volumes.get(claim.volume_name)
        if volume is None:
            reasons.append(PV_NOT_EXIST)
            break
        if not node_affinity_matches(volume.node_terms, node.labels):
            reasons.append(NODE_CONFLICT)
            break
    if any(c.selected_node is not None and c.selected_node != node.name for c in claims.delayed):
        reasons.insert(1 if reasons and reasons[0] == NODE_CONFLICT else 0, BIND_CONFLICT)
        return unresolvable(*reasons)
    provision = [c for c in claims.delayed if c.selected_node is not None]
    static: list[tuple[Claim, Volume]] = []
    taken: set[str] = set()
    for claim in sorted((c for c in claims.delayed if c.selected_node is None), key=lambda c: c.request):
        volume = matching_volume(claim, claims.candidates.get(claim.storage_class, ()), node.labels, taken)
        if volume is None:
            provision.append(claim)
        else:
            taken.add(volume.name)
            static.append((claim, volume))
    for claim in provision:  # kube's checkVolumeProvisions
        if not claim.storage_class:
            return Status(Code.ERROR, (f'no class for claim "{claim.namespace}/{claim.name}"',))
        storage_class = volumes.classes.get(claim.storage_class)
        if storage_class is None:
            return Status(Code.ERROR, (f'failed to find storage class "{claim.storage_class}"',))
        if storage_class.provisioner in ("", NO_PROVISIONER) or not storage_class.allows(node.labels):
            reasons.insert(1 if reasons and reasons[0] == NODE_CONFLICT else 0, BIND_CONFLICT)
            break
    if reasons:
        return unresolvable(*reasons)
    return PodVolumes(tuple(static), tuple(c for c in provision if c.selected_node is None))


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


BIND_TIMEOUT_SECONDS = 600  # VolumeBindingArgs.bindTimeoutSeconds' default (apis/config/v1/defaults.go)


class VolumeBinding(PreFilterSkip, PreFilter):
    name = "VolumeBinding"
    node_only: ClassVar[bool] = False

    def __init__(self, bind_timeout: int = BIND_TIMEOUT_SECONDS) -> None:
        self.bind_timeout = bind_timeout  # how long the binder waits for the claims to be bound (volume_binder.py)

    def skips(self, pod: V1Pod, state: CycleState) -> bool:
        return not has_claims(pod)

    def prefilter(self, pod: V1Pod, state: CycleState) -> Status:
        claims = _claims(pod, state)
        return claims if isinstance(claims, Status) else SUCCESS

    def filter(self, pod: V1Pod, node: NodeInfo, state: CycleState) -> Status:
        claims = _claims(pod, state)
        if claims is None:
            return SUCCESS
        if isinstance(claims, Status):
            return claims
        found = pod_volumes(claims, node, state.volumes)
        return found if isinstance(found, Status) else SUCCESS


def _claims(pod: V1Pod, state: CycleState) -> PodVolumeClaims | Status | None:
    """The pod's claims sorted out, once per pod; None for a pod without claims."""
    if not has_claims(pod):
        return None
    volumes = state.volumes
    return state.memo(_CLAIMS, lambda: pod_volume_claims(pod, volumes))


def volume_plan(pod: V1Pod, node: NodeInfo, volumes: VolumeObjects) -> PodVolumes:
    """What the binder must write for `pod` on `node`, the node the filters chose (kube keeps it from Filter in
    its CycleState; finding it again for one node is cheaper than keeping it for every node). Empty when every
    claim is bound, or the pod no longer fits (then the binder writes nothing and the bind decides)."""
    if not has_claims(pod):
        return PodVolumes()
    claims = pod_volume_claims(pod, volumes)
    found = pod_volumes(claims, node, volumes) if not isinstance(claims, Status) else claims
    return found if isinstance(found, PodVolumes) else PodVolumes()
