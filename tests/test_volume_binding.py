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
            {
                n: (
                    Code.UNRESOLVABLE,
                    'persistentvolumeclaim "data" waits for its first consumer: my-scheduler does not bind '
                    "WaitForFirstConsumer claims yet",
                )
                for n in "ab"
            },
            id="a WaitForFirstConsumer claim without a selected node is not bound by this scheduler (yet)",
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
