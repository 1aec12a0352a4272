import pytest
from kubernetes.client import V1Node, V1Pod

from policies.framework import Code
from policies.node_resources_fit import (
    MOST_ALLOCATED,
    REQUESTED_TO_CAPACITY_RATIO,
    LeastAllocated,
    MostAllocated,
    NodeResourcesFit,
    ScoringStrategy,
)
from tests.builders import container, node, node_info, pod, sidecar, state

GPU = "nvidia.com/gpu"


def fit(the_pod: V1Pod, the_node: V1Node, running: list[V1Pod] | None = None) -> tuple[str, ...]:
    info = node_info(the_node, running or [])
    status = NodeResourcesFit().filter(the_pod, info, state(info))
    assert status.ok == (not status.reasons)
    return status.reasons


@pytest.mark.parametrize(
    "the_pod, the_node, running, code",
    [
        pytest.param(pod(cpu="1"), node(), [], Code.SUCCESS, id="a pod that fits"),
        pytest.param(
            pod(cpu="3"), node(), [pod("a", cpu="2")], Code.UNSCHEDULABLE, id="short of cpu others take: resolvable"
        ),
        pytest.param(pod(cpu="5"), node(), [], Code.UNRESOLVABLE, id="more cpu than the node has: unresolvable"),
        pytest.param(
            pod(cpu="3", memory="9Gi"),
            node(),
            [pod("a", cpu="2")],
            Code.UNRESOLVABLE,
            id="one resource beyond the node makes the whole status unresolvable",
        ),
        pytest.param(pod(extended={GPU: "1"}), node(), [], Code.UNRESOLVABLE, id="an extended resource the node lacks"),
        pytest.param(pod(), node(pods="1"), [pod("a")], Code.UNSCHEDULABLE, id="too many pods is always resolvable"),
        pytest.param(
            pod(), node(pods=None), [], Code.UNSCHEDULABLE, id="even on a node that takes no pods (kube's rule)"
        ),
    ],
)
def test_filter_code(the_pod: V1Pod, the_node: V1Node, running: list[V1Pod], code: Code) -> None:
    """kube's fit.go: UnschedulableAndUnresolvable when a request exceeds the node's allocatable."""
    info = node_info(the_node, running)
    assert NodeResourcesFit().filter(the_pod, info, state(info)).code is code


@pytest.mark.parametrize(
    "the_pod, the_node, running, reasons",
    [
        pytest.param(pod(cpu="1", memory="1Gi"), node(), [], (), id="a small pod fits an empty node"),
        pytest.param(pod(), node(cpu=None, memory=None), [], (), id="a pod without requests needs only a pod slot"),
        pytest.param(pod(cpu="4", memory="8Gi"), node(), [], (), id="a pod asking for exactly what is free fits"),
        pytest.param(pod(cpu="5"), node(), [], ("Insufficient cpu",), id="too much cpu"),
        pytest.param(pod(memory="9Gi"), node(), [], ("Insufficient memory",), id="too much memory"),
        pytest.param(
            pod(cpu="5", memory="9Gi"),
            node(),
            [],
            ("Insufficient cpu", "Insufficient memory"),
            id="every insufficient resource is listed, not only the first",
        ),
        pytest.param(
            pod(cpu="600m"),
            node(cpu="1"),
            [pod("a", cpu="500m")],
            ("Insufficient cpu",),
            id="pods already on the node take their share",
        ),
        pytest.param(
            pod(), node(pods="1"), [pod("a")], ("Too many pods",), id="the pod count is checked against allocatable"
        ),
        pytest.param(
            pod(cpu="5"),
            node(pods="1"),
            [pod("a")],
            ("Insufficient cpu", "Too many pods"),
            id="too many pods and insufficient cpu together",
        ),
        pytest.param(
            pod(), node(cpu=None, memory=None, pods=None), [], ("Too many pods",), id="a node without pods takes none"
        ),
        pytest.param(
            pod(extended={GPU: "1"}), node(), [], (f"Insufficient {GPU}",), id="an extended resource the node lacks"
        ),
        pytest.param(
            pod(extended={GPU: "2"}),
            node(extended={GPU: "4"}),
            [pod("a", extended={GPU: "3"})],
            (f"Insufficient {GPU}",),
            id="an extended resource already taken",
        ),
        pytest.param(
            pod(extended={GPU: "1"}), node(extended={GPU: "1"}), [], (), id="an extended resource the node has"
        ),
        pytest.param(
            pod(extended={GPU: "0"}, cpu="0"),
            node(cpu=None),
            [],
            (),
            id="a zero request for something the node lacks is fine",
        ),
        pytest.param(
            pod(containers=[container(extended={"ephemeral-storage": "2Gi"})]),
            node(extended={"ephemeral-storage": "1Gi"}),
            [],
            ("Insufficient ephemeral-storage",),
            id="ephemeral storage",
        ),
        pytest.param(
            pod(cpu="1", init=[container("3500m")]),
            node(),
            [pod("a", cpu="1")],
            ("Insufficient cpu",),
            id="a large init container counts",
        ),
        pytest.param(
            pod(cpu="1", init=[sidecar("1")], overhead={"cpu": "1500m"}),
            node(),
            [pod("a", cpu="1")],
            ("Insufficient cpu",),
            id="sidecars and overhead count",
        ),
        pytest.param(
            pod(cpu="1", memory="1Gi"),
            node(cpu="2", memory="2Gi", pods="10", capacity_only=True),
            [],
            (),
            id="capacity stands in for a missing allocatable",
        ),
    ],
)
def test_filter(the_pod: V1Pod, the_node: V1Node, running: list[V1Pod], reasons: tuple[str, ...]) -> None:
    assert fit(the_pod, the_node, running) == reasons


def scores(the_pod: V1Pod, the_node: V1Node, running: list[V1Pod] | None = None) -> tuple[float, float]:
    info = node_info(the_node, running or [])
    return (
        LeastAllocated().score(the_pod, info, state(info)),
        MostAllocated().score(the_pod, info, state(info)),
    )


@pytest.mark.parametrize(
    "the_pod, the_node, running, least",
    [
        pytest.param(pod(cpu="1", memory="2Gi"), node(), [], 75, id="a quarter of cpu and memory leaves 75"),
        pytest.param(pod(cpu="1", memory="6Gi"), node(), [], 50, id="the mean over cpu and memory: 75 and 25 make 50"),
        pytest.param(pod(), node(cpu="1", memory="1000Mi"), [], 85, id="no requests count as 100m and 200Mi"),
        pytest.param(
            pod(cpu="0", memory="0"), node(cpu="1", memory="1Gi"), [], 100, id="explicit zero requests count as zero"
        ),
        pytest.param(
            pod(cpu="1", memory="2Gi"),
            node(),
            [pod("a", cpu="1", memory="2Gi")],
            50,
            id="pods already on the node count",
        ),
        pytest.param(
            pod(cpu="1", memory="1Gi"),
            node(),
            [pod("a"), pod("b")],
            (70 + 82) // 2,  # kube's integers: cpu (4000 - 1200) * 100 // 4000, memory (8192 - 1424) * 100 // 8192
            id="pods without requests on the node count with the defaults",
        ),
        pytest.param(pod(cpu="8", memory="16Gi"), node(), [], 0, id="more than the node has is simply full"),
        pytest.param(
            pod(cpu="1", memory="2Gi"),
            node(cpu="0"),
            [],
            75,
            id="a resource the node has none of is left out, as kube does",
        ),
    ],
)
def test_least_and_most_allocated_mirror_each_other(
    the_pod: V1Pod, the_node: V1Node, running: list[V1Pod], least: float
) -> None:
    least_score, most_score = scores(the_pod, the_node, running)
    assert least_score == pytest.approx(least)
    # Mirror images up to kube's integer floor on each resource and on the mean.
    assert 100 - least - 1 <= most_score <= 100 - least


def test_a_node_without_cpu_or_memory_scores_zero_for_both_strategies() -> None:
    assert scores(pod(cpu="1"), node(cpu="0", memory="0")) == (0, 0)


def test_least_allocated_prefers_the_emptier_node() -> None:
    the_pod = pod(cpu="1", memory="1Gi")
    empty, busy = node_info(node("empty")), node_info(node("busy"), [pod("a", cpu="2", memory="4Gi")])
    least, most = LeastAllocated(), MostAllocated()
    cycle = state(empty, busy)
    assert least.score(the_pod, empty, cycle) > least.score(the_pod, busy, cycle)
    assert most.score(the_pod, empty, cycle) < most.score(the_pod, busy, cycle)


def strategy_score(strategy: ScoringStrategy, the_pod: V1Pod, the_node: V1Node) -> float:
    info = node_info(the_node)
    return NodeResourcesFit(strategy).score(the_pod, info, state(info))


RISING = ((0, 0), (100, 10))  # bin-packing as a shape
FALLING = ((0, 10), (100, 0))  # spreading as a shape


@pytest.mark.parametrize(
    "strategy, the_pod, expected",
    [
        pytest.param(ScoringStrategy(), pod(cpu="1", memory="2Gi"), 75, id="LeastAllocated on cpu and memory"),
        pytest.param(
            ScoringStrategy(resources=(("cpu", 2), ("memory", 1))),
            pod(cpu="1", memory="4Gi"),
            (75 * 2 + 50) // 3,
            id="resource weights weigh the mean",
        ),
        pytest.param(
            ScoringStrategy(MOST_ALLOCATED, (("cpu", 1),)), pod(cpu="1", memory="4Gi"), 25, id="MostAllocated on cpu"
        ),
        pytest.param(
            ScoringStrategy(REQUESTED_TO_CAPACITY_RATIO, (("cpu", 1),), RISING),
            pod(cpu="1"),
            25,
            id="a rising shape scores utilisation",
        ),
        pytest.param(
            ScoringStrategy(REQUESTED_TO_CAPACITY_RATIO, (("cpu", 1),), FALLING),
            pod(cpu="1"),
            75,
            id="a falling shape scores room",
        ),
        pytest.param(
            ScoringStrategy(REQUESTED_TO_CAPACITY_RATIO, (("cpu", 1), ("memory", 1)), RISING),
            pod(cpu="2", memory="0"),
            50,
            id="a resource scoring 0 is left out of the mean (kube's rule for this strategy)",
        ),
        pytest.param(
            ScoringStrategy(REQUESTED_TO_CAPACITY_RATIO, (("cpu", 1),), ((0, 10), (30, 0))),
            pod(cpu="1"),
            17,
            id="between points the line is interpolated with Go's truncation: 100 + (-100 * 25) / 30 is 100 - 83",
        ),
        pytest.param(
            ScoringStrategy(REQUESTED_TO_CAPACITY_RATIO, (("cpu", 1),), ((50, 4), (100, 10))),
            pod(cpu="6"),
            100,
            id="more than the node has counts as full utilisation",
        ),
        pytest.param(
            ScoringStrategy(resources=(("cpu", 1), ("example.com/gpu", 5))),
            pod(cpu="1"),
            75,
            id="an extended resource the pod does not ask for is left out",
        ),
    ],
)
def test_scoring_strategies(strategy: ScoringStrategy, the_pod: V1Pod, expected: float) -> None:
    assert strategy_score(strategy, the_pod, node(cpu="4", memory="8Gi", extended={"example.com/gpu": "2"})) == expected
