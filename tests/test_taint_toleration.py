import pytest
from kubernetes.client import V1Taint, V1Toleration

from policies.algorithm import schedule
from policies.framework import Code, Profile
from policies.taint_toleration import TaintToleration, tolerates
from tests.builders import node, node_info, pod, state, taint, tol


@pytest.mark.parametrize(
    "toleration, the_taint, expected",
    [
        pytest.param(tol("gpu", "Equal", "true"), taint("gpu", value="true"), True, id="Equal with the same value"),
        pytest.param(tol("gpu", "Equal", "false"), taint("gpu", value="true"), False, id="Equal with another value"),
        pytest.param(tol("gpu", value="true"), taint("gpu", value="true"), True, id="the operator defaults to Equal"),
        pytest.param(tol("gpu", value="x"), taint("gpu", value="true"), False, id="a defaulted Equal compares values"),
        pytest.param(tol("gpu", "Equal"), taint("gpu"), True, id="Equal without values on either side"),
        pytest.param(tol("gpu", "Equal", ""), taint("gpu"), True, id="an empty value equals a missing one"),
        pytest.param(tol("gpu", "Equal"), taint("gpu", value="true"), False, id="Equal without a value wants none"),
        pytest.param(tol("gpu", "Exists"), taint("gpu", value="anything"), True, id="Exists ignores the value"),
        pytest.param(tol("gpu", "Exists"), taint("tpu"), False, id="Exists still compares the key"),
        pytest.param(tol("tpu", value="true"), taint("gpu", value="true"), False, id="a different key"),
        pytest.param(tol(op="Exists"), taint("gpu", value="true"), True, id="an empty key with Exists matches any key"),
        pytest.param(tol(op="Exists"), taint("x", "NoExecute"), True, id="an empty key with Exists matches any effect"),
        pytest.param(
            tol(op="Exists", effect="NoSchedule"),
            taint("x", "NoExecute"),
            False,
            id="an empty key with Exists still compares a given effect",
        ),
        pytest.param(tol("gpu", "Exists", effect="NoSchedule"), taint("gpu", "NoSchedule"), True, id="the same effect"),
        pytest.param(
            tol("gpu", "Exists", effect="NoSchedule"), taint("gpu", "NoExecute"), False, id="a different effect"
        ),
        pytest.param(
            tol("gpu", "Exists", effect="NoSchedule"),
            taint("gpu", "PreferNoSchedule"),
            False,
            id="NoSchedule does not tolerate PreferNoSchedule",
        ),
        pytest.param(tol("gpu", "Exists"), taint("gpu", "NoExecute"), True, id="an empty effect matches NoExecute"),
        pytest.param(
            tol("gpu", "Exists"), taint("gpu", "PreferNoSchedule"), True, id="an empty effect matches PreferNoSchedule"
        ),
        pytest.param(
            tol("gpu", "Bogus", "3"), taint("gpu", value="3"), False, id="an unknown operator tolerates nothing"
        ),
    ],
)
def test_tolerates(toleration: V1Toleration, the_taint: V1Taint, expected: bool) -> None:
    assert tolerates(toleration, the_taint) is expected


@pytest.mark.parametrize(
    "tolerations, taints, reason",
    [
        pytest.param([], [], None, id="a node without taints takes any pod"),
        pytest.param(
            [], [taint("gpu", value="true")], "node(s) had untolerated taint {gpu: true}", id="NoSchedule is enforced"
        ),
        pytest.param(
            [], [taint("gpu", "NoExecute", "true")], "node(s) had untolerated taint {gpu: true}", id="so is NoExecute"
        ),
        pytest.param([], [taint("gpu", "PreferNoSchedule")], None, id="PreferNoSchedule is not filtered"),
        pytest.param(
            [], [taint("dedicated")], "node(s) had untolerated taint {dedicated: }", id="a taint without a value"
        ),
        pytest.param([tol("gpu", "Exists")], [taint("gpu", value="true")], None, id="a tolerated taint"),
        pytest.param([tol(op="Exists")], [taint("a"), taint("b", "NoExecute")], None, id="a wildcard toleration"),
        pytest.param(
            [tol("a", "Exists")],
            [taint("a"), taint("b", value="2")],
            "node(s) had untolerated taint {b: 2}",
            id="the reason names the taint that is not tolerated",
        ),
        pytest.param(
            [],
            [taint("a", value="1"), taint("b", value="2")],
            "node(s) had untolerated taint {a: 1}",
            id="only the first untolerated taint is reported, as kube does",
        ),
        pytest.param(
            [tol("gpu", "Exists", effect="NoExecute")],
            [taint("gpu", "NoSchedule")],
            "node(s) had untolerated taint {gpu: }",
            id="a toleration for another effect does not help",
        ),
    ],
)
def test_filter(tolerations: list[V1Toleration], taints: list[V1Taint], reason: str | None) -> None:
    info = node_info(node(taints=taints))
    status = TaintToleration().filter(pod(tolerations=tolerations), info, state(info))
    assert status.reasons == ((reason,) if reason else ())
    assert status.code is (Code.UNRESOLVABLE if reason else Code.SUCCESS)  # preemption cannot remove a taint


@pytest.mark.parametrize(
    "tolerations, taints, raw",
    [
        pytest.param([], [], 0, id="no taints"),
        pytest.param([], [taint("a", "PreferNoSchedule"), taint("b", "PreferNoSchedule")], 2, id="each one counts"),
        pytest.param([tol("a", "Exists")], [taint("a", "PreferNoSchedule")], 0, id="a tolerated one does not count"),
        pytest.param(
            [tol("a", "Exists", effect="NoSchedule")],
            [taint("a", "PreferNoSchedule")],
            1,
            id="a toleration for NoSchedule does not cover PreferNoSchedule",
        ),
        pytest.param([], [taint("a"), taint("b", "NoExecute")], 0, id="hard taints are the filter's business"),
    ],
)
def test_score_counts_untolerated_prefer_no_schedule_taints(
    tolerations: list[V1Toleration], taints: list[V1Taint], raw: int
) -> None:
    info = node_info(node(taints=taints))
    assert TaintToleration().score(pod(tolerations=tolerations), info, state(info)) == raw


def test_prefer_no_schedule_steers_the_pod_to_the_untainted_node() -> None:
    plugin = TaintToleration()
    profile = Profile("t", (plugin,), ((plugin, 1),))
    nodes = [
        node_info(node("a-tainted", taints=[taint("spot", "PreferNoSchedule")])),
        node_info(node("b-clean")),
        node_info(node("c-twice", taints=[taint("x", "PreferNoSchedule"), taint("y", "PreferNoSchedule")])),
    ]
    decision = schedule(profile, pod(), nodes, explain=True)
    assert decision.node == "b-clean"
    # Reverse normalisation: no untolerated taint is 100, the most untolerated taints 0.
    assert decision.scores == {
        "a-tainted": {"TaintToleration": 50.0},
        "b-clean": {"TaintToleration": 100.0},
        "c-twice": {"TaintToleration": 0.0},
    }
