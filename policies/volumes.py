"""What the volume policies read of PersistentVolumeClaims, PersistentVolumes, StorageClasses and CSINodes: compact
records made from the API's JSON (the cache keeps only these), the pod's claims, and kube's lookups with their
NotFound texts. Nothing here does I/O; framework.py imports this module, not the other way round.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kubernetes.client import V1LabelSelector, V1NodeSelectorTerm, V1Pod

from policies.resources import quantity

# kube's annotations (pkg/controller/volume/persistentvolume/util, component-helpers/storage/volume).
BIND_COMPLETED = "pv.kubernetes.io/bind-completed"
SELECTED_NODE = "volume.kubernetes.io/selected-node"
BETA_STORAGE_CLASS = "volume.beta.kubernetes.io/storage-class"
BOUND_BY_CONTROLLER = "pv.kubernetes.io/bound-by-controller"
NO_PROVISIONER = "kubernetes.io/no-provisioner"
WAIT_FOR_FIRST_CONSUMER = "WaitForFirstConsumer"
READ_WRITE_ONCE_POD = "ReadWriteOncePod"
# The filters that read the storage objects: the daemon watches those only for a profile with one of them.
VOLUME_FILTERS = frozenset({"VolumeRestrictions", "NodeVolumeLimits", "VolumeBinding", "VolumeZone"})


@dataclass(frozen=True, slots=True)
class Claim:
    """A PersistentVolumeClaim as the policies read it."""

    namespace: str
    name: str
    volume_name: str  # spec.volumeName: "" while unbound
    storage_class: str  # kube's GetPersistentVolumeClaimClass: the beta annotation, else spec.storageClassName
    access_modes: frozenset[str]
    bind_completed: bool  # the PV controller finished binding (pv.kubernetes.io/bind-completed)
    lost: bool  # status.phase Lost
    deleting: bool
    controller_uid: str | None  # the uid of its controlling owner (a generic ephemeral volume's pod)
    selected_node: str | None  # volume.kubernetes.io/selected-node
    # What matching it with an available PersistentVolume reads (WaitForFirstConsumer binding).
    uid: str = ""
    resource_version: str = ""
    request: int = 0  # spec.resources.requests.storage in bytes
    volume_mode: str = "Filesystem"
    attributes_class: str = ""  # spec.volumeAttributesClassName
    selector: V1LabelSelector | None = None

    @property
    def bound(self) -> bool:
        """kube's isPVCFullyBound (volumebinding/binder.go)."""
        return bool(self.volume_name) and self.bind_completed

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> Claim:
        meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
        annotations = meta.get("annotations") or {}
        owner = next((o for o in meta.get("ownerReferences") or [] if o.get("controller")), None)
        return cls(
            namespace=meta.get("namespace", ""),
            name=meta["name"],
            volume_name=spec.get("volumeName") or "",
            storage_class=annotations.get(BETA_STORAGE_CLASS) or spec.get("storageClassName") or "",
            access_modes=frozenset(spec.get("accessModes") or ()),
            bind_completed=BIND_COMPLETED in annotations,
            lost=status.get("phase") == "Lost",
            deleting=meta.get("deletionTimestamp") is not None,
            controller_uid=owner["uid"] if owner else None,
            selected_node=annotations.get(SELECTED_NODE),
            uid=meta.get("uid", ""),
            resource_version=meta.get("resourceVersion", ""),
            request=_storage(((spec.get("resources") or {}).get("requests") or {}).get("storage")),
            volume_mode=spec.get("volumeMode") or "Filesystem",
            attributes_class=spec.get("volumeAttributesClassName") or "",
            selector=V1LabelSelector.from_dict(spec["selector"]) if spec.get("selector") else None,
        )


def _storage(value: object) -> int:
    return quantity("storage", str(value)) if value is not None else 0


@dataclass(frozen=True, slots=True)
class Volume:
    """A PersistentVolume as the policies read it."""

    name: str
    labels: Mapping[str, str]
    # spec.nodeAffinity.required's terms; None when the volume has no required node affinity.
    node_terms: tuple[V1NodeSelectorTerm, ...] | None
    csi: tuple[str, str] | None  # (driver, volumeHandle) of a CSI volume
    # What matching it with a claim reads (kube's FindMatchingVolume).
    claim_ref: tuple[str, str, str] | None = None  # (namespace, name, uid) of spec.claimRef
    available: bool = False  # status.phase Available
    deleting: bool = False
    capacity: int = 0  # spec.capacity.storage in bytes
    access_modes: frozenset[str] = frozenset()
    storage_class: str = ""  # kube's GetPersistentVolumeClass: the beta annotation, else spec.storageClassName
    volume_mode: str = "Filesystem"
    attributes_class: str = ""
    resource_version: str = ""

    def bound_to(self, claim: Claim) -> bool:
        """kube's IsVolumeBoundToClaim: its claimRef names the claim (and its uid, when it has one)."""
        ref = self.claim_ref
        return ref is not None and ref[:2] == (claim.namespace, claim.name) and ref[2] in ("", claim.uid)

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> Volume:
        meta, spec, status = obj["metadata"], obj.get("spec") or {}, obj.get("status") or {}
        ref = spec.get("claimRef")
        annotations = meta.get("annotations") or {}
        required = (spec.get("nodeAffinity") or {}).get("required")
        terms = None
        if required is not None:
            terms = tuple(_term(t) for t in required.get("nodeSelectorTerms") or ())
        csi = spec.get("csi")
        return cls(
            name=meta["name"],
            labels=meta.get("labels") or {},
            node_terms=terms,
            csi=(csi.get("driver", ""), csi.get("volumeHandle", "")) if csi else None,
            claim_ref=(ref.get("namespace", ""), ref.get("name", ""), ref.get("uid", "")) if ref else None,
            available=status.get("phase") == "Available",
            deleting=meta.get("deletionTimestamp") is not None,
            capacity=_storage((spec.get("capacity") or {}).get("storage")),
            access_modes=frozenset(spec.get("accessModes") or ()),
            storage_class=annotations.get(BETA_STORAGE_CLASS) or spec.get("storageClassName") or "",
            volume_mode=spec.get("volumeMode") or "Filesystem",
            attributes_class=spec.get("volumeAttributesClassName") or "",
            resource_version=meta.get("resourceVersion", ""),
        )


def _term(raw: Mapping[str, Any]) -> V1NodeSelectorTerm:
    term = V1NodeSelectorTerm.from_dict(dict(raw))
    assert term is not None  # from_dict returns None only for None
    return term


@dataclass(frozen=True, slots=True)
class StorageClass:
    name: str
    provisioner: str
    binding_mode: str | None  # volumeBindingMode (the API server defaults it to Immediate)
    # allowedTopologies: OR-ed terms, each AND-ed (label key, allowed values); empty allows every node.
    allowed_topologies: tuple[tuple[tuple[str, frozenset[str]], ...], ...] = ()

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> StorageClass:
        topologies = tuple(
            tuple((e["key"], frozenset(e.get("values") or ())) for e in term.get("matchLabelExpressions") or ())
            for term in obj.get("allowedTopologies") or ()
        )
        return cls(obj["metadata"]["name"], obj.get("provisioner", ""), obj.get("volumeBindingMode"), topologies)

    def allows(self, labels: Mapping[str, str]) -> bool:
        """kube's MatchTopologySelectorTerms: no terms match every node; else one term's expressions all match."""
        if not self.allowed_topologies:
            return True
        return any(term and all(labels.get(k) in values for k, values in term) for term in self.allowed_topologies)


def csi_limits(obj: Mapping[str, Any]) -> tuple[str, dict[str, int]]:
    """(node name, driver → allocatable.count) of a CSINode: kube's getVolumeLimits (nodevolumelimits/utils.go)
    reads only drivers with a count."""
    drivers = (obj.get("spec") or {}).get("drivers") or []
    limits = {
        d["name"]: int(d["allocatable"]["count"])
        for d in drivers
        if (d.get("allocatable") or {}).get("count") is not None
    }
    return obj["metadata"]["name"], limits


@dataclass(frozen=True, slots=True)
class VolumeObjects:
    """The storage objects the cache keeps: claims by "namespace/name", volumes and classes by name, and each
    CSINode's volume limits by node name."""

    claims: Mapping[str, Claim] = field(default_factory=dict)
    volumes: Mapping[str, Volume] = field(default_factory=dict)
    classes: Mapping[str, StorageClass] = field(default_factory=dict)
    csi_nodes: Mapping[str, Mapping[str, int]] = field(default_factory=dict)


NO_VOLUMES = VolumeObjects()


@dataclass(frozen=True, slots=True)
class PodClaim:
    """One volume of a pod backed by a claim: a persistentVolumeClaim, or a generic ephemeral volume's claim
    (named `<pod>-<volume>`, kube's ephemeral.VolumeClaimName)."""

    name: str
    ephemeral: bool


def pod_claims(pod: V1Pod) -> list[PodClaim]:
    spec = pod.spec
    out = []
    for volume in (spec.volumes if spec else None) or ():
        if volume.persistent_volume_claim is not None:
            out.append(PodClaim(volume.persistent_volume_claim.claim_name or "", False))
        elif volume.ephemeral is not None:
            out.append(PodClaim(f"{pod.metadata.name if pod.metadata else ''}-{volume.name}", True))
    return out


def has_claims(pod: V1Pod) -> bool:
    """Cheap: the hot path asks it of every pod."""
    spec = pod.spec
    volumes = spec.volumes if spec else None
    if not volumes:
        return False
    return any(v.persistent_volume_claim is not None or v.ephemeral is not None for v in volumes)


def claim_keys(pod: V1Pod) -> tuple[str, ...]:
    """ "namespace/name" of every claim the pod uses (PodInfo.claims)."""
    if not has_claims(pod):
        return ()
    namespace = (pod.metadata.namespace if pod.metadata else None) or ""
    return tuple(f"{namespace}/{c.name}" for c in pod_claims(pod))


def pod_namespace(pod: V1Pod) -> str:
    return (pod.metadata.namespace if pod.metadata else None) or ""


# The listers' NotFound errors, as kube's plugins pass them on (apimachinery's NewNotFound).
def claim_not_found(name: str) -> str:
    return f'persistentvolumeclaim "{name}" not found'


def volume_not_found(name: str) -> str:
    return f'persistentvolume "{name}" not found'


def class_not_found(name: str) -> str:
    return f'storageclass.storage.k8s.io "{name}" not found'


def not_for_pod(claim: Claim, pod: V1Pod) -> str | None:
    """kube's ephemeral.VolumeIsForPod (component-helpers/storage/ephemeral): the message when a generic
    ephemeral volume's claim is not controlled by the pod."""
    meta = pod.metadata
    if claim.namespace == pod_namespace(pod) and meta is not None and claim.controller_uid == meta.uid:
        return None
    return (
        f"PVC {claim.namespace}/{claim.name} was not created for pod "
        f"{pod_namespace(pod)}/{meta.name if meta else ''} (pod is not owner)"
    )
