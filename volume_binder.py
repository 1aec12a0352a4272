"""kube-scheduler's volume binder, the PreBind half of VolumeBinding (framework/plugins/volumebinding/binder.go):
for the node the filters chose, write what binds the pod's unbound WaitForFirstConsumer claims — a claimRef on
each matched PersistentVolume (bindAPIUpdate, GetBindVolumeToClaim), the selected node on each claim to
provision — then wait, polling each second and bounded, until the PV controller (or the provisioner) has bound
every claim (checkBindings). Only then is the pod's Binding posted. Runs in a bind thread.

Unlike kube, a failure undoes what was written (the claimRef, while it is still ours and the claim unbound; the
selected node, while the claim is unbound), so the volume is free for the next attempt.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from kubeapi import Api, describe
from policies.volume_binding import PodVolumes
from policies.volumes import BIND_COMPLETED, BOUND_BY_CONTROLLER, SELECTED_NODE, Claim

log = logging.getLogger("my-scheduler")

BIND_TIMEOUT_SECONDS = 600.0  # kube's bindTimeoutSeconds default (apis/config/v1/defaults.go)
POLL_SECONDS = 1.0  # kube's checkBindings poll interval
TIMED_OUT = "context deadline exceeded"  # what kube's wait.PollUntilContextTimeout reports


class VolumeBindingError(Exception):
    """Why the claims were not bound, in kube's words (`binding volumes: …`)."""


def _volume_path(name: str) -> str:
    return f"/api/v1/persistentvolumes/{quote(name)}"


def _claim_path(claim: Claim) -> str:
    return f"/api/v1/namespaces/{quote(claim.namespace)}/persistentvolumeclaims/{quote(claim.name)}"


def _pointer(key: str) -> str:
    """A JSON Pointer token (RFC 6901) for an annotation key."""
    return key.replace("~", "~0").replace("/", "~1")


def bind_volumes(
    api: Api,
    plan: PodVolumes,
    node: str,
    stop: threading.Event,
    *,
    timeout: float = BIND_TIMEOUT_SECONDS,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Write the plan, wait for the claims to be bound; raises VolumeBindingError (after undoing) if they are
    not within `timeout`, if the claims change under it, or if `stop` is set."""
    written: list[tuple[str, list[dict[str, Any]], Claim]] = []  # (path, JSON patch undoing the write, its claim)
    try:
        for claim, volume in plan.static:
            ref = {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": claim.namespace}
            ref |= {"name": claim.name, "uid": claim.uid, "resourceVersion": claim.resource_version}
            # The volume's resourceVersion: written only if it is still what the filters saw (unclaimed).
            meta = {"resourceVersion": volume.resource_version, "annotations": {BOUND_BY_CONTROLLER: "yes"}}
            api.patch_object(_volume_path(volume.name), {"metadata": meta, "spec": {"claimRef": ref}})
            written.append(
                (
                    _volume_path(volume.name),
                    [
                        {"op": "test", "path": "/spec/claimRef/uid", "value": claim.uid},
                        {"op": "remove", "path": "/spec/claimRef"},
                    ],
                    claim,
                )
            )
            log.info("Bound volume %s to claim %s/%s for node %s", volume.name, claim.namespace, claim.name, node)
        for claim in plan.provision:
            meta = {"resourceVersion": claim.resource_version, "annotations": {SELECTED_NODE: node}}
            api.patch_object(_claim_path(claim), {"metadata": meta})
            annotation = f"/metadata/annotations/{_pointer(SELECTED_NODE)}"
            written.append(
                (
                    _claim_path(claim),
                    [{"op": "test", "path": annotation, "value": node}, {"op": "remove", "path": annotation}],
                    claim,
                )
            )
            log.info("Selected node %s for claim %s/%s", node, claim.namespace, claim.name)
        _wait_bound(api, plan, stop, clock() + timeout, clock)
    except Exception as e:
        _undo(api, written)
        if isinstance(e, VolumeBindingError):
            raise
        raise VolumeBindingError(f"binding volumes: {describe(e)}") from e


def _wait_bound(api: Api, plan: PodVolumes, stop: threading.Event, deadline: float, clock: Callable[[], float]) -> None:
    """kube's checkBindings, polled: every claim has its volume and the PV controller's bind-completed; a claim
    to provision that lost its selected node failed to provision."""
    static = {(c.namespace, c.name): v.name for c, v in plan.static}
    waiting = [c for c, _ in plan.static] + list(plan.provision)
    while True:
        left = []
        for claim in waiting:
            obj = api.read_object(_claim_path(claim))
            meta, spec = obj["metadata"], obj.get("spec") or {}
            annotations = meta.get("annotations") or {}
            if meta.get("uid") != claim.uid:
                raise VolumeBindingError(f'binding volumes: persistentvolumeclaim "{claim.name}" was re-created')
            volume = spec.get("volumeName") or ""
            matched = static.get((claim.namespace, claim.name))
            if matched is not None:
                if volume and volume != matched:
                    raise VolumeBindingError(f'binding volumes: ClaimRef got reset for pv "{matched}"')
            elif SELECTED_NODE not in annotations and not volume:
                raise VolumeBindingError(f'binding volumes: selectedNode annotation reset for PVC "{claim.name}"')
            if not (volume and BIND_COMPLETED in annotations):
                left.append(claim)
        if not left:
            return
        waiting = left
        if clock() >= deadline:
            raise VolumeBindingError(f"binding volumes: {TIMED_OUT}")
        if stop.wait(POLL_SECONDS):
            raise VolumeBindingError("binding volumes: the scheduler is stopping")


def _undo(api: Api, written: list[tuple[str, list[dict[str, Any]], Claim]]) -> None:
    """Best effort: a claim the PV controller bound meanwhile keeps its volume (the `test` op fails then, or the
    claim is bound and left alone)."""
    for path, patch, claim in written:
        try:
            if (api.read_object(_claim_path(claim)).get("spec") or {}).get("volumeName"):
                continue
            api.patch_object(path, patch, content_type="application/json-patch+json")
        except Exception as e:  # noqa: BLE001 — undoing is best effort; the failure is reported already
            log.warning("could not undo a volume binding write (%s): %s", path, describe(e))
