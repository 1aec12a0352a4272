from __future__ import annotations

import pytest

from policies.framework import Code
from policies.volume_binding import (
    BIND_CONFLICT,
    NODE_CONFLICT,
    PV_NOT_EXIST,
    UNBOUND_IMMEDIATE,
    VolumeBinding,
    node_affinity_matches,
    volume_plan,
)
from policies.volumes import Claim, StorageClass, Volume
from tests.builders import (
    HOSTNAME,
    claim,
    expr,
    node_term,
    node_with_pods,
    pod,
    state,
    storage_class,
    verdicts,
    volume,
    volume_objects,
)

NODES = [node_with_pods("a"), node_with_pods("b")]
ON_B = [node_term(expr(HOSTNAME, "In", "b"))]
WFFC = storage_class("local", "WaitForFirstConsumer", "rancher.io/local-path")
STATIC = storage_class("static", "WaitForFirstConsumer", "kubernetes.io/no-provisioner")


@pytest.mark.parametrize(
    "objects, claims, ephemeral, expected",
    [
        pytest.param(
            [claim("data", volume="pv"), volume("pv", terms=ON_B)],
            ["data"],
            [],
            {"a": (Code.UNRESOLVABLE, NODE_CONFLICT), "b": None},
            id="a bound claim's volume with node affinity for b fits b only",
        ),
        pytest.param(
            [claim("data", volume="pv"), volume("pv")],
            ["data"],
            [],
            {"a": None, "b": None},
            id="a bound volume without node affinity fits every node",
        ),
        pytest.param(
            [claim("data", volume="gone")],
            ["data"],
            [],
            {"a": (Code.UNRESOLVABLE, PV_NOT_EXIST), "b": (Code.UNRESOLVABLE, PV_NOT_EXIST)},
            id="a claim bound to a volume that does not exist fits nowhere",
        ),
        pytest.param(
            [claim("data", storage_class="fast"), storage_class("fast")],
            ["data"],
            [],
            {"a": (Code.UNRESOLVABLE, UNBOUND_IMMEDIATE), "b": (Code.UNRESOLVABLE, UNBOUND_IMMEDIATE)},
            id="an unbound claim of an Immediate class rejects the pod",
        ),
        pytest.param(
            [claim("data")],
            ["data"],
            [],
            {"a": (Code.UNRESOLVABLE, UNBOUND_IMMEDIATE), "b": (Code.UNRESOLVABLE, UNBOUND_IMMEDIATE)},
            id="an unbound claim without a class binds immediately",
        ),
        pytest.param(
            [claim("data", volume="pv", bound=False), volume("pv")],
            ["data"],
            [],
            {"a": (Code.UNRESOLVABLE, UNBOUND_IMMEDIATE), "b": (Code.UNRESOLVABLE, UNBOUND_IMMEDIATE)},
            id="a prebound claim the PV controller has not finished counts as unbound immediate",
        ),
        pytest.param(
            [],
            ["data"],
            [],
            {"a": (Code.UNRESOLVABLE, 'persistentvolumeclaim "data" not found')}
            | {"b": (Code.UNRESOLVABLE, 'persistentvolumeclaim "data" not found')},
            id="a missing claim rejects the pod with the lister's NotFound text",
        ),
        pytest.param(
            [],
            [],
            ["scratch"],
            {
                n: (
                    Code.UNRESOLVABLE,
                    'waiting for ephemeral volume controller to create the persistentvolumeclaim "p-scratch"',
                )
                for n in "ab"
            },
            id="a generic ephemeral volume's claim not created yet",
        ),
        pytest.param(
            [claim("p-scratch", volume="pv", owner_uid="someone-else"), volume("pv")],
            [],
            ["scratch"],
            {
                n: (Code.UNRESOLVABLE, "PVC default/p-scratch was not created for pod default/p (pod is not owner)")
                for n in "ab"
            },
            id="an ephemeral volume's claim another pod owns",
        ),
        pytest.param(
            [claim("p-scratch", volume="pv", owner_uid="uid-default-p"), volume("pv", terms=ON_B)],
            [],
            ["scratch"],
            {"a": (Code.UNRESOLVABLE, NODE_CONFLICT), "b": None},
            id="an ephemeral volume's own bound claim is checked like any bound claim",
        ),
        pytest.param(
            [claim("data", volume="pv", phase="Lost"), volume("pv")],
            ["data"],
            [],
            {
                n: (Code.UNRESOLVABLE, 'persistentvolumeclaim "data" bound to non-existent persistentvolume "pv"')
                for n in "ab"
            },
            id="a lost claim",
        ),
        pytest.param(
            [claim("data", volume="pv", deleting=True), volume("pv")],
            ["data"],
            [],
            {n: (Code.UNRESOLVABLE, 'persistentvolumeclaim "data" is being deleted') for n in "ab"},
            id="a claim being deleted",
        ),
        pytest.param(
            [claim("data", storage_class="local", selected_node="b"), WFFC],
            ["data"],
            [],
            {"a": (Code.UNRESOLVABLE, BIND_CONFLICT), "b": None},
            id="a WaitForFirstConsumer claim with a selected node fits that node only",
        ),
        pytest.param(
            [claim("data", storage_class="local"), WFFC],
            ["data"],
            [],
            {"a": None, "b": None},
            id="a WaitForFirstConsumer claim without a volume is provisioned wherever its class allows",
        ),
        pytest.param(
            [claim("data", storage_class="static"), STATIC, volume("pv", storage_class="static", terms=ON_B)],
            ["data"],
            [],
            {"a": (Code.UNRESOLVABLE, BIND_CONFLICT), "b": None},
            id="a WaitForFirstConsumer claim with an available volume on b only, no provisioner",
        ),
        pytest.param(
            [claim("data", storage_class="static"), STATIC, volume("pv", storage_class="static", phase="Released")],
            ["data"],
            [],
            {"a": (Code.UNRESOLVABLE, BIND_CONFLICT), "b": (Code.UNRESOLVABLE, BIND_CONFLICT)},
            id="a volume that is not Available is not matched",
        ),
        pytest.param(
            [claim("data", storage_class="static", request="2Gi"), STATIC, volume("pv", storage_class="static")],
            ["data"],
            [],
            {"a": (Code.UNRESOLVABLE, BIND_CONFLICT), "b": (Code.UNRESOLVABLE, BIND_CONFLICT)},
            id="a volume smaller than the request is not matched",
        ),
        pytest.param(
            [
                claim("data", storage_class="static"),
                STATIC,
                volume("pv", storage_class="static", claimed_by="default/other"),
            ],
            ["data"],
            [],
            {"a": (Code.UNRESOLVABLE, BIND_CONFLICT), "b": (Code.UNRESOLVABLE, BIND_CONFLICT)},
            id="a volume claimed by another claim is not matched",
        ),
        pytest.param(
            [
                claim("data", storage_class="static", modes=["ReadWriteMany"]),
                STATIC,
                volume("pv", storage_class="static"),
            ],
            ["data"],
            [],
            {"a": (Code.UNRESOLVABLE, BIND_CONFLICT), "b": (Code.UNRESOLVABLE, BIND_CONFLICT)},
            id="a volume without the claim's access modes is not matched",
        ),
        pytest.param(
            [
                claim("data", storage_class="zonal"),
                storage_class("zonal", "WaitForFirstConsumer", allowed={HOSTNAME: ["a"]}),
            ],
            ["data"],
            [],
            {"a": None, "b": (Code.UNRESOLVABLE, BIND_CONFLICT)},
            id="a class's allowedTopologies limit where it provisions",
        ),
    ],
)
def test_volume_binding(
    objects: list[Claim | Volume | StorageClass],
    claims: list[str],
    ephemeral: list[str],
    expected: dict[str, tuple[Code, str] | None],
) -> None:
    got = verdicts(VolumeBinding(), pod(claims=claims, ephemeral=ephemeral), NODES, volume_objects(*objects))
    assert {n: None if s.ok else (s.code, "; ".join(s.reasons)) for n, s in got.items()} == expected


def test_a_pod_without_claims_is_skipped() -> None:
    plugin = VolumeBinding()
    assert plugin.skips(pod(), state())
    assert not plugin.skips(pod(claims=["data"]), state())


@pytest.mark.parametrize(
    "terms, labels, fits",
    [
        pytest.param(None, {}, True, id="no required node affinity"),
        pytest.param([node_term(expr("zone", "In", "z1"))], {"zone": "z1"}, True, id="a matching expression"),
        pytest.param([node_term(expr("zone", "In", "z1"))], {"zone": "z2"}, False, id="a mismatching expression"),
        pytest.param([], {"zone": "z1"}, False, id="no terms match no node"),
        pytest.param(
            [node_term(fields=[expr("metadata.name", "In", "b")])],
            {HOSTNAME: "b"},
            False,
            id="matchFields sees a node without a name, as kube's CheckNodeAffinity",
        ),
    ],
)
def test_node_affinity_matches_labels_only(
    terms: list[dict[str, object]] | None, labels: dict[str, str], fits: bool
) -> None:
    assert node_affinity_matches(volume("pv", terms=terms).node_terms, labels) is fits


def test_the_plan_binds_the_smallest_fitting_volume_and_provisions_the_rest() -> None:
    objects = volume_objects(
        claim("small", storage_class="static", request="1Gi"),
        claim("big", storage_class="static", request="5Gi"),
        claim("fresh", storage_class="local"),
        claim("chosen", storage_class="local", selected_node="b"),
        STATIC,
        WFFC,
        volume("pv-10", storage_class="static", capacity="10Gi"),
        volume("pv-2", storage_class="static", capacity="2Gi"),
        volume("pv-a", storage_class="static", capacity="1Gi", terms=[node_term(expr(HOSTNAME, "In", "a"))]),
    )
    plan = volume_plan(pod(claims=["big", "small", "fresh", "chosen"]), NODES[1], objects)
    assert [(c.name, v.name) for c, v in plan.static] == [("small", "pv-2"), ("big", "pv-10")]
    assert [c.name for c in plan.provision] == ["fresh"], "a claim with its selected node is written already"
    assert not volume_plan(pod(claims=["small"]), NODES[0], volume_objects(claim("small", volume="pv"), volume("pv")))
