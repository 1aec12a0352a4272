from __future__ import annotations

import pytest
from kubernetes.client import V1Pod

from policies.framework import Code, CycleState
from policies.volume_restrictions import READ_WRITE_ONCE_POD_CONFLICT, VolumeRestrictions
from policies.volumes import Claim
from tests.builders import claim, node_with_pods, pod, verdicts, volume_objects, with_volumes

RWOP = ("ReadWriteOncePod",)


@pytest.mark.parametrize(
    "claims, users, expected",
    [
        pytest.param(
            [claim("data", volume="pv", modes=RWOP)],
            [pod("user", claims=["data"])],
            (Code.UNSCHEDULABLE, READ_WRITE_ONCE_POD_CONFLICT),
            id="a ReadWriteOncePod claim another pod uses is a conflict on every node",
        ),
        pytest.param(
            [claim("data", volume="pv", modes=RWOP)],
            [],
            None,
            id="a ReadWriteOncePod claim nobody uses",
        ),
        pytest.param(
            [claim("data", volume="pv")],
            [pod("user", claims=["data"])],
            None,
            id="a ReadWriteOnce claim may be shared (the kubelet decides)",
        ),
        pytest.param(
            [claim("data", volume="pv", modes=RWOP, namespace="other")],
            [pod("user", claims=["data"], namespace="other")],
            (Code.UNRESOLVABLE, 'persistentvolumeclaim "data" not found'),
            id="the claim is looked up in the pod's namespace",
        ),
    ],
)
def test_volume_restrictions(claims: list[Claim], users: list[V1Pod], expected: tuple[Code, str] | None) -> None:
    nodes = [node_with_pods("a", pods=users), node_with_pods("b")]
    got = verdicts(VolumeRestrictions(), pod(claims=["data"]), nodes, volume_objects(*claims))
    assert {n: None if s.ok else (s.code, s.reasons[0]) for n, s in got.items()} == {"a": expected, "b": expected}


def test_preemption_removing_the_user_lifts_the_conflict() -> None:
    plugin, wanting = VolumeRestrictions(), pod(claims=["data"])
    nodes = [node_with_pods("a", pods=[pod("user", claims=["data"])]), node_with_pods("b")]
    state = CycleState(nodes, with_volumes(volume_objects(claim("data", volume="pv", modes=RWOP))))
    assert not plugin.filter(wanting, nodes[0], state).ok
    without = nodes[0].clone()
    without.remove_pod("uid-default-user")
    derived = state.standing_in([without, nodes[1]], 0)
    assert plugin.filter(wanting, without, derived).ok


def test_a_pod_without_claims_is_skipped() -> None:
    assert VolumeRestrictions().skips(pod(), CycleState([]))
