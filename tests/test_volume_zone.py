from __future__ import annotations

import pytest

from policies.framework import Code
from policies.volume_zone import CONFLICT, VolumeZone
from policies.volumes import Claim, StorageClass, Volume
from tests.builders import claim, node_with_pods, pod, storage_class, verdicts, volume, volume_objects

ZONE, REGION = "topology.kubernetes.io/zone", "topology.kubernetes.io/region"
BETA_ZONE = "failure-domain.beta.kubernetes.io/zone"
NODES = [
    node_with_pods("a", labels={ZONE: "z1", REGION: "r1"}),
    node_with_pods("b", labels={ZONE: "z2", REGION: "r1"}),
    node_with_pods("plain"),
]
BOUND = claim("data", volume="pv")


@pytest.mark.parametrize(
    "objects, expected",
    [
        pytest.param(
            [BOUND, volume("pv", labels={ZONE: "z2"})],
            {"a": CONFLICT, "b": None, "plain": None},
            id="a volume in z2 fits z2 and a node without topology labels",
        ),
        pytest.param(
            [BOUND, volume("pv", labels={ZONE: "z1__z2"})],
            {"a": None, "b": None, "plain": None},
            id="a multi-zone label lists zones separated by __",
        ),
        pytest.param(
            [BOUND, volume("pv", labels={BETA_ZONE: "z1"})],
            {"a": None, "b": CONFLICT, "plain": None},
            id="a beta zone label matches the node's GA label",
        ),
        pytest.param(
            [BOUND, volume("pv", labels={REGION: "r2"})],
            {"a": CONFLICT, "b": CONFLICT, "plain": None},
            id="the region must match too",
        ),
        pytest.param(
            [BOUND, volume("pv")], {"a": None, "b": None, "plain": None}, id="a volume without topology labels"
        ),
        pytest.param(
            [claim("data", storage_class="local"), storage_class("local", "WaitForFirstConsumer")],
            {"a": None, "b": None, "plain": None},
            id="an unbound WaitForFirstConsumer claim is left out",
        ),
        pytest.param(
            [claim("data", storage_class="fast"), storage_class("fast")],
            {n: "PersistentVolume had no name" for n in ("a", "b", "plain")},
            id="an unbound Immediate claim",
        ),
        pytest.param(
            [claim("data")],
            {n: "PersistentVolumeClaim had no pv name and storageClass name" for n in ("a", "b", "plain")},
            id="an unbound claim without a class",
        ),
        pytest.param(
            [claim("data", storage_class="gone")],
            {n: 'storageclass.storage.k8s.io "gone" not found' for n in ("a", "b", "plain")},
            id="an unknown class",
        ),
        pytest.param(
            [BOUND],
            {n: 'persistentvolume "pv" not found' for n in ("a", "b", "plain")},
            id="a missing volume",
        ),
    ],
)
def test_volume_zone(objects: list[Claim | Volume | StorageClass], expected: dict[str, str | None]) -> None:
    got = verdicts(VolumeZone(), pod(claims=["data"]), NODES, volume_objects(*objects))
    assert {n: None if s.ok else s.reasons[0] for n, s in got.items()} == expected
    assert all(s.ok or s.code is Code.UNRESOLVABLE for s in got.values())
