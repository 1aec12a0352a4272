import pytest
from kubernetes.client import V1NodeSelectorRequirement, V1Pod

from policies.framework import Code
from policies.node_affinity import MISMATCH, NodeAffinity, requirement_matches
from tests.builders import Json, expr, made, node, node_info, node_term, pod, state


def requirement(key: str, op: str, *values: str) -> V1NodeSelectorRequirement:
    return made(V1NodeSelectorRequirement.from_dict(expr(key, op, *values)))


@pytest.mark.parametrize(
    "req, labels, expected",
    [
        pytest.param(requirement("zone", "In", "a", "b"), {"zone": "b"}, True, id="In with a listed value"),
        pytest.param(requirement("zone", "In", "a"), {"zone": "c"}, False, id="In with another value"),
        pytest.param(requirement("zone", "In", "a"), {}, False, id="In without the label"),
        pytest.param(requirement("zone", "In", ""), {}, False, id="In an empty value still needs the label"),
        pytest.param(requirement("zone", "NotIn", "a"), {"zone": "b"}, True, id="NotIn with another value"),
        pytest.param(requirement("zone", "NotIn", "a"), {"zone": "a"}, False, id="NotIn with a listed value"),
        pytest.param(requirement("zone", "NotIn", "a"), {}, True, id="NotIn without the label matches"),
        pytest.param(requirement("gpu", "Exists"), {"gpu": ""}, True, id="Exists with an empty value"),
        pytest.param(requirement("gpu", "Exists"), {}, False, id="Exists without the label"),
        pytest.param(requirement("gpu", "DoesNotExist"), {}, True, id="DoesNotExist without the label"),
        pytest.param(requirement("gpu", "DoesNotExist"), {"gpu": "1"}, False, id="DoesNotExist with the label"),
        pytest.param(requirement("cores", "Gt", "4"), {"cores": "8"}, True, id="Gt with a bigger number"),
        pytest.param(requirement("cores", "Gt", "4"), {"cores": "4"}, False, id="Gt is strict"),
        pytest.param(requirement("cores", "Lt", "4"), {"cores": "3"}, True, id="Lt with a smaller number"),
        pytest.param(requirement("cores", "Lt", "4"), {"cores": "4"}, False, id="Lt is strict"),
        pytest.param(requirement("cores", "Gt", "-1"), {"cores": "0"}, True, id="Gt with a negative bound"),
        pytest.param(requirement("cores", "Gt", "09"), {"cores": "10"}, True, id="leading zeros are decimal"),
        pytest.param(requirement("cores", "Gt", "4"), {}, False, id="Gt without the label"),
        pytest.param(requirement("cores", "Gt", "4"), {"cores": "many"}, False, id="Gt with a non-integer label"),
        pytest.param(requirement("cores", "Lt", "4"), {"cores": "2.5"}, False, id="Lt with a decimal label"),
        pytest.param(requirement("cores", "Gt", "x"), {"cores": "8"}, False, id="Gt with a non-integer bound"),
        pytest.param(requirement("cores", "Gt", "1", "2"), {"cores": "8"}, False, id="Gt with two bounds"),
        pytest.param(requirement("cores", "Gt"), {"cores": "8"}, False, id="Gt without a bound"),
        pytest.param(requirement("cores", "Gt", "4"), {"cores": "1_0"}, False, id="an underscore is not a Go integer"),
        pytest.param(
            requirement("cores", "Lt", "4"),
            {"cores": "-99999999999999999999"},
            False,
            id="a number beyond int64 is not an integer",
        ),
        pytest.param(requirement("zone", "Like", "a"), {"zone": "a"}, False, id="an unknown operator matches nothing"),
    ],
)
def test_requirement_matches(req: V1NodeSelectorRequirement, labels: dict[str, str], expected: bool) -> None:
    assert requirement_matches(req, labels) is expected


A, B = {"zone": "a"}, {"zone": "b"}


@pytest.mark.parametrize(
    "the_pod, name, labels, fits",
    [
        pytest.param(pod(), "n1", {}, True, id="a pod without selector or affinity fits any node"),
        pytest.param(pod(node_selector=A), "n1", A, True, id="nodeSelector matches"),
        pytest.param(pod(node_selector=A), "n1", B, False, id="nodeSelector with another value"),
        pytest.param(pod(node_selector=A), "n1", {}, False, id="nodeSelector without the label"),
        pytest.param(pod(node_selector={"x": ""}), "n1", {}, False, id="an empty selector value needs the label"),
        pytest.param(pod(node_selector={"x": ""}), "n1", {"x": ""}, True, id="an empty selector value matches"),
        pytest.param(pod(node_selector={**A, "gpu": "1"}), "n1", A, False, id="every nodeSelector label must match"),
        pytest.param(pod(node_selector={}), "n1", {}, True, id="an empty nodeSelector matches"),
        pytest.param(
            pod(node_selector=A, required=[node_term(expr("zone", "In", "b"))]),
            "n1",
            A,
            False,
            id="nodeSelector AND required affinity: the affinity fails",
        ),
        pytest.param(
            pod(node_selector=A, required=[node_term(expr("gpu", "Exists"))]),
            "n1",
            {**A, "gpu": "1"},
            True,
            id="nodeSelector AND required affinity: both match",
        ),
        pytest.param(
            pod(node_selector=B, required=[node_term(expr("zone", "In", "a"))]),
            "n1",
            A,
            False,
            id="nodeSelector AND required affinity: the selector fails",
        ),
        pytest.param(
            pod(required=[node_term(expr("zone", "In", "b")), node_term(expr("zone", "In", "a"))]),
            "n1",
            A,
            True,
            id="terms are OR-ed",
        ),
        pytest.param(
            pod(required=[node_term(expr("zone", "In", "a"), expr("gpu", "Exists"))]),
            "n1",
            A,
            False,
            id="expressions in a term are AND-ed",
        ),
        pytest.param(pod(required=[node_term()]), "n1", A, False, id="an empty term matches nothing"),
        pytest.param(
            pod(required=[node_term(), node_term(expr("zone", "Exists"))]),
            "n1",
            A,
            True,
            id="an empty term does not spoil its siblings",
        ),
        pytest.param(pod(required=[]), "n1", A, False, id="required affinity without terms matches nothing"),
        pytest.param(
            pod(required=[node_term(fields=[expr("metadata.name", "In", "n1")])]),
            "n1",
            {},
            True,
            id="matchFields on metadata.name",
        ),
        pytest.param(
            pod(required=[node_term(fields=[expr("metadata.name", "In", "n1")])]),
            "n2",
            {},
            False,
            id="matchFields on another node's name",
        ),
        pytest.param(
            pod(required=[node_term(fields=[expr("metadata.name", "NotIn", "n1")])]),
            "n2",
            {},
            True,
            id="matchFields with NotIn",
        ),
        pytest.param(
            pod(required=[node_term(expr("zone", "In", "a"), fields=[expr("metadata.name", "In", "n1")])]),
            "n1",
            B,
            False,
            id="matchFields and matchExpressions are AND-ed",
        ),
        pytest.param(
            pod(required=[node_term(fields=[expr("spec.unschedulable", "In", "n1")])]),
            "n1",
            {},
            False,
            id="matchFields on an unsupported field matches nothing",
        ),
        pytest.param(
            pod(required=[node_term(expr("cores", "Gt", "4"))]), "n1", {"cores": "16"}, True, id="Gt in a required term"
        ),
    ],
)
def test_filter(the_pod: V1Pod, name: str, labels: dict[str, str], fits: bool) -> None:
    info = node_info(node(name, labels=labels))
    status = NodeAffinity().filter(the_pod, info, state(info))
    assert status.code is (Code.SUCCESS if fits else Code.UNRESOLVABLE)  # preemption cannot relabel a node
    assert status.reasons == (() if fits else (MISMATCH,))


def test_the_reason_is_kubes() -> None:
    assert MISMATCH == "node(s) didn't match Pod's node affinity/selector"


@pytest.mark.parametrize(
    "preferred, labels, raw",
    [
        pytest.param([], A, 0, id="no preferences"),
        pytest.param([(5, node_term(expr("zone", "In", "a")))], A, 5, id="a matching preference adds its weight"),
        pytest.param(
            [(5, node_term(expr("zone", "In", "a")))], B, 0, id="a preference that does not match adds nothing"
        ),
        pytest.param(
            [
                (5, node_term(expr("zone", "In", "a"))),
                (20, node_term(expr("zone", "Exists"))),
                (1, node_term(expr("x", "Exists"))),
            ],
            A,
            25,
            id="matching weights add up",
        ),
        pytest.param([(50, node_term())], A, 0, id="an empty preference matches nothing"),
    ],
)
def test_score_sums_matching_preferred_weights(
    preferred: list[tuple[int, Json]], labels: dict[str, str], raw: int
) -> None:
    info = node_info(node(labels=labels))
    assert NodeAffinity().score(pod(preferred=preferred), info, state(info)) == raw
