import pytest
from kubernetes.client import V1Pod

from policies.framework import NodeInfo, workload
from policies.selector_spread import ZONE_LABEL, SelectorSpread
from tests.builders import node, node_info, pod, state


def spread(the_pod: V1Pod, nodes: list[NodeInfo]) -> dict[str, object]:
    cycle = state(*nodes)
    plugin = SelectorSpread()
    return {n.name: pytest.approx(plugin.score(the_pod, n, cycle)) for n in nodes}


def replicas(owner: str, count: int, node_name: str) -> list[V1Pod]:
    return [pod(f"{node_name}-{owner}-{i}", owner=owner) for i in range(count)]


def test_a_lone_pod_scores_100_everywhere() -> None:
    nodes = [node_info(node("a"), [pod("x", owner="rs")]), node_info(node("b"))]
    assert spread(pod(), nodes) == {"a": 100, "b": 100}


def test_no_replica_running_yet_scores_100_everywhere() -> None:
    nodes = [node_info(node("a"), replicas("other", 2, "a")), node_info(node("b"))]
    assert spread(pod(owner="rs"), nodes) == {"a": 100, "b": 100}


def test_fewer_replicas_of_the_same_controller_score_higher() -> None:
    nodes = [
        node_info(node("a")),
        node_info(node("b"), replicas("rs", 1, "b")),
        node_info(node("c"), replicas("rs", 2, "c") + replicas("other", 5, "c")),
    ]
    assert spread(pod("new", owner="rs"), nodes) == {"a": 100, "b": 50, "c": 0}


@pytest.mark.parametrize(
    "the_pod, expected",
    [
        pytest.param(pod(owner="rs-1"), "owner/rs-1", id="a controller owner reference names the workload"),
        pytest.param(
            pod(owner="rs-1", labels={"app": "web"}), "owner/rs-1", id="the controller wins over the app label"
        ),
        pytest.param(pod(labels={"app": "web"}), "default/app=web", id="without a controller, the app label"),
        pytest.param(pod(namespace="prod", labels={"app": "web"}), "prod/app=web", id="the app label is namespaced"),
        pytest.param(
            pod(owner="rs-1", owner_is_controller=False), None, id="an owner that is not the controller is ignored"
        ),
        pytest.param(pod(labels={"tier": "web"}), None, id="other labels do not make a workload"),
        pytest.param(pod(), None, id="a lone pod"),
    ],
)
def test_workload(the_pod: V1Pod, expected: str | None) -> None:
    assert workload(the_pod) == expected


def test_app_labels_in_another_namespace_do_not_count() -> None:
    web = {"app": "web"}
    nodes = [
        node_info(node("a"), [pod("x", labels=web)]),
        node_info(node("b"), [pod("y", namespace="other", labels=web), pod("z", namespace="other", labels=web)]),
    ]
    assert spread(pod("new", labels=web), nodes) == {"a": 0, "b": 100}


def test_zones_weigh_two_thirds() -> None:
    zone_a, zone_b = {ZONE_LABEL: "a"}, {ZONE_LABEL: "b"}
    nodes = [
        node_info(node("a1", labels=zone_a), replicas("rs", 1, "a1")),
        node_info(node("a2", labels=zone_a)),
        node_info(node("b1", labels=zone_b)),
    ]
    # Node counts 1/0/0 (max 1) and zone counts a=1, b=0 (max 1).
    assert spread(pod("new", owner="rs"), nodes) == {"a1": 0, "a2": 100 / 3, "b1": 100}


def test_a_node_without_a_zone_gets_its_node_score_only() -> None:
    nodes = [
        node_info(node("a1", labels={ZONE_LABEL: "a"}), replicas("rs", 2, "a1")),
        node_info(node("plain"), replicas("rs", 1, "plain")),
    ]
    assert spread(pod("new", owner="rs"), nodes) == {"a1": 0, "plain": 50}


def test_all_zones_empty_of_the_workload_score_100() -> None:
    nodes = [node_info(node("a1", labels={ZONE_LABEL: "a"})), node_info(node("b1", labels={ZONE_LABEL: "b"}))]
    assert spread(pod("new", owner="rs"), nodes) == {"a1": 100, "b1": 100}
