from __future__ import annotations

import pytest
from kubernetes.client import V1Pod

from policies.framework import Code
from policies.node_volume_limits import MAX_VOLUME_COUNT_EXCEEDED, NodeVolumeLimits
from policies.volumes import Claim, StorageClass, Volume
from tests.builders import claim, node_with_pods, pod, storage_class, verdicts, volume, volume_objects

DRIVER = "csi.example.com"
OBJECTS: list[Claim | Volume | StorageClass] = [
    claim("one", volume="pv1"),
    claim("two", volume="pv2"),
    claim("three", volume="pv3"),
    claim("nfs", volume="pv-nfs"),
    claim("later", storage_class="fast"),
    volume("pv1", csi=(DRIVER, "h1")),
    volume("pv2", csi=(DRIVER, "h2")),
    volume("pv3", csi=(DRIVER, "h3")),
    volume("pv-nfs"),
    storage_class("fast", "WaitForFirstConsumer", DRIVER),
]


@pytest.mark.parametrize(
    "wants, running, limit, expected",
    [
        pytest.param(
            ["three"], [["one"], ["two"]], 2, MAX_VOLUME_COUNT_EXCEEDED, id="a third volume over a limit of 2"
        ),
        pytest.param(["three"], [["one"]], 2, None, id="a second volume within a limit of 2"),
        pytest.param(["one"], [["one"], ["two"]], 2, None, id="a volume already on the node is counted once"),
        pytest.param(["three"], [["one", "two"]], None, None, id="a node without a CSINode limit"),
        pytest.param(["nfs"], [["one"], ["two"]], 2, None, id="a volume that is not CSI is not counted"),
        pytest.param(
            ["later"],
            [["one"], ["two"]],
            2,
            MAX_VOLUME_COUNT_EXCEEDED,
            id="a volume to provision counts for its class's driver",
        ),
        pytest.param(
            ["missing"],
            [],
            2,
            'looking up PVC default/missing: persistentvolumeclaim "missing" not found',
            id="a missing claim",
        ),
    ],
)
def test_node_volume_limits(
    wants: list[str], running: list[list[str]], limit: int | None, expected: str | None
) -> None:
    users: list[V1Pod] = [pod(f"u{i}", claims=c) for i, c in enumerate(running)]
    nodes = [node_with_pods("a", pods=users)]
    objects = volume_objects(*OBJECTS, csi_nodes={"a": {DRIVER: limit}} if limit is not None else {})
    (status,) = verdicts(NodeVolumeLimits(), pod(claims=wants), nodes, objects).values()
    assert (None if status.ok else status.reasons[0]) == expected
    if expected == MAX_VOLUME_COUNT_EXCEEDED:
        assert status.code is Code.UNSCHEDULABLE
