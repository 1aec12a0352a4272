"""VolumeRestrictions: a claim with the ReadWriteOncePod access mode that another pod already uses makes the pod
unschedulable everywhere (framework/plugins/volumerestrictions/volume_restrictions.go). Preemption may help: the
status is Unschedulable, and removing the pod that uses the claim lifts it.
"""

from __future__ import annotations

from typing import ClassVar

from kubernetes.client import V1Pod

from policies.framework import SUCCESS, CycleState, Key, NodeInfo, PreFilter, PreFilterSkip, Status, unresolvable
from policies.framework import unschedulable as unschedulable_status
from policies.volumes import READ_WRITE_ONCE_POD, claim_not_found, pod_namespace

READ_WRITE_ONCE_POD_CONFLICT = (
    "node(s) unavailable due to PersistentVolumeClaim with ReadWriteOncePod access mode already in-use by another pod"
)

# The pod's ReadWriteOncePod claims ("namespace/name"), or the status its PreFilter fails with.
_CLAIMS: Key[tuple[str, ...] | Status] = Key("VolumeRestrictions claims", pod_only=True)
# How many assigned pods use each of them, on the state's cluster (kube's conflictingPVCRefCount).
_USERS: Key[dict[str, int]] = Key("VolumeRestrictions users")


def _pvc_names(pod: V1Pod) -> list[str]:
    """kube reads only persistentVolumeClaim volumes here, not generic ephemeral ones."""
    volumes = (pod.spec.volumes if pod.spec else None) or ()
    return [v.persistent_volume_claim.claim_name or "" for v in volumes if v.persistent_volume_claim is not None]


def _rwop_claims(pod: V1Pod, state: CycleState) -> tuple[str, ...] | Status:
    namespace, out = pod_namespace(pod), []
    for name in _pvc_names(pod):
        claim = state.volumes.claims.get(f"{namespace}/{name}")
        if claim is None:
            return unresolvable(claim_not_found(name))
        if READ_WRITE_ONCE_POD in claim.access_modes:
            out.append(f"{namespace}/{name}")
    return tuple(out)


def _users(claims: tuple[str, ...], state: CycleState) -> dict[str, int]:
    """Counted once per cluster; a state derived for one changed node (preemption's dry run) adjusts the base
    state's counts for that node, as kube's AddPod/RemovePod do."""
    root = state.base
    if root is not None and state.change is not None:
        base = root.memo(_USERS, lambda: _users(claims, root))
        before, after = state.change
        return {c: base[c] - before.claim_refs.get(c, 0) + after.claim_refs.get(c, 0) for c in claims}
    return {c: sum(n.claim_refs.get(c, 0) for n in state.nodes) for c in claims}


class VolumeRestrictions(PreFilterSkip, PreFilter):
    name = "VolumeRestrictions"
    node_only: ClassVar[bool] = False

    def skips(self, pod: V1Pod, state: CycleState) -> bool:
        claims = state.memo(_CLAIMS, lambda: _rwop_claims(pod, state))
        return not isinstance(claims, Status) and not claims

    def prefilter(self, pod: V1Pod, state: CycleState) -> Status:
        if not _pvc_names(pod):
            return SUCCESS
        claims = state.memo(_CLAIMS, lambda: _rwop_claims(pod, state))
        return claims if isinstance(claims, Status) else SUCCESS

    def filter(self, pod: V1Pod, node: NodeInfo, state: CycleState) -> Status:
        claims = state.memo(_CLAIMS, lambda: _rwop_claims(pod, state))
        if isinstance(claims, Status) or not claims:
            return claims if isinstance(claims, Status) else SUCCESS
        users = state.memo(_USERS, lambda: _users(claims, state))
        if any(users.values()):
            return unschedulable_status(READ_WRITE_ONCE_POD_CONFLICT)
        return SUCCESS
