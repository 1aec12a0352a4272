"""The scheduling algorithm: the search over nodes, scoring and weights, failure messages, plugin errors."""

from collections import Counter
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
import numpy.typing as npt
import pytest
from kubernetes.client import V1Pod

from policies.algorithm import MAX_SHAPES, FilterCache, failure_message, nodes_to_find, schedule
from policies.config import default_profile
from policies.framework import (
    MAX_SCORE,
    SUCCESS,
    Code,
    CycleState,
    NodeInfo,
    Normalize,
    PodInfo,
    Profile,
    ScorePlugin,
    Status,
)
from policies.node_resources_fit import LeastAllocated, MostAllocated, NodeResourcesFit
from policies.taint_toleration import TaintToleration
from tests.builders import node, node_info, pod, taint

TAINT = "node(s) had untolerated taint {gpu: true}"


@pytest.mark.parametrize(
    "node_count, reasons, message",
    [
        pytest.param(
            3,
            [[TAINT], ["Insufficient cpu"], ["Insufficient cpu"]],
            "0/3 nodes are available: 1 node(s) had untolerated taint {gpu: true}, 2 Insufficient cpu.",
            id="kube's message: counts per reason, sorted as strings, joined by a comma",
        ),
        pytest.param(
            2,
            [["Insufficient cpu", "Insufficient memory"], ["Insufficient memory"]],
            "0/2 nodes are available: 1 Insufficient cpu, 2 Insufficient memory.",
            id="a node with several reasons counts for each",
        ),
        pytest.param(
            1,
            [[TAINT, TAINT]],
            "0/1 nodes are available: 1 node(s) had untolerated taint {gpu: true}.",
            id="a reason repeated for one node counts once",
        ),
        pytest.param(
            12,
            [["Insufficient cpu"]] * 10 + [["Too many pods"]] * 2,
            "0/12 nodes are available: 10 Insufficient cpu, 2 Too many pods.",
            id="sorting is by string, so 10 comes before 2 as in kube",
        ),
        pytest.param(0, [], "no nodes available to schedule pods", id="no nodes at all"),
    ],
)
def test_failure_message(node_count: int, reasons: list[list[str]], message: str) -> None:
    assert failure_message(node_count, reasons) == message


def test_the_example_message_end_to_end() -> None:
    nodes = [
        node_info(node("gpu", taints=[taint("gpu", value="true")])),
        node_info(node("small-1", cpu="1")),
        node_info(node("small-2", cpu="1")),
    ]
    decision = schedule(default_profile("x"), pod(cpu="2"), nodes)
    assert decision.node is None
    assert (
        decision.message == "0/3 nodes are available: 1 node(s) had untolerated taint {gpu: true}, 2 Insufficient cpu."
    )
    assert set(decision.verdicts) == {"gpu", "small-1", "small-2"}


@dataclass
class Fixed:
    """A score plugin returning a preset raw score per node name."""

    raw: dict[str, float]
    name: str = "Fixed"
    normalize: Normalize = Normalize.NONE

    def score(self, pod: V1Pod, node: NodeInfo, state: CycleState) -> float:
        return self.raw[node.name]


def profile_with(*scores: tuple[ScorePlugin, int]) -> Profile:
    return Profile("t", (NodeResourcesFit(),), scores)


@pytest.mark.parametrize(
    "raw, chosen",
    [
        pytest.param({"a": 10, "b": 90, "c": 50}, "b", id="the best total wins"),
        pytest.param({"c": 70, "b": 70, "a": 10}, "b", id="ties go to the lowest name"),
        pytest.param({"b": 0, "a": 0}, "a", id="all equal: the lowest name"),
    ],
)
def test_schedule_picks_the_best_node(raw: dict[str, float], chosen: str) -> None:
    nodes = [node_info(node(name)) for name in raw]
    decision = schedule(profile_with((Fixed(raw), 1)), pod(), nodes)
    assert decision.node == chosen
    assert decision.message == ""
    assert decision.totals == raw


def test_scores_are_weighted_and_summed() -> None:
    nodes = [node_info(node("a")), node_info(node("b"))]
    profile = profile_with((Fixed({"a": 100, "b": 0}), 1), (Fixed({"a": 0, "b": 40}, name="Other"), 3))
    decision = schedule(profile, pod(), nodes, explain=True)
    assert decision.totals == {"a": 100, "b": 120}
    assert decision.node == "b"
    assert decision.scores == {"a": {"Fixed": 100, "Other": 0}, "b": {"Fixed": 0, "Other": 40}}


def test_a_score_outside_the_range_is_a_plugin_bug() -> None:
    nodes = [node_info(node("a"))]
    decision = schedule(profile_with((Fixed({"a": MAX_SCORE + 1}), 1)), pod(), nodes)
    assert decision.node is None
    assert decision.status.code is Code.ERROR
    assert decision.message == 'running score plugin "Fixed": ValueError: a score outside 0..100'


class Broken:
    """A filter with a bug: it raises on node `b`."""

    name = "Broken"
    node_only: ClassVar[bool] = False

    def filter(self, pod: V1Pod, node: NodeInfo, state: CycleState) -> Status:
        if node.name == "b":
            raise KeyError("b")
        return SUCCESS


@pytest.mark.parametrize("explain", [False, True], ids=["the daemon's path", "explain"])
def test_a_filter_that_raises_is_an_error_status_naming_it(explain: bool) -> None:
    nodes = [node_info(node("a")), node_info(node("b"))]
    decision = schedule(Profile("t", (Broken(),), ()), pod(), nodes, explain=explain)
    assert decision.node is None
    assert decision.status.code is Code.ERROR
    assert decision.message == "running filter plugin \"Broken\": KeyError: 'b'"
    assert isinstance(decision.status.error, KeyError)


def test_a_filter_returning_an_error_status_fails_the_pod_even_where_other_nodes_fit() -> None:
    error = Status(Code.ERROR, ("disk on fire",))

    class Erring(Broken):
        def filter(self, pod: V1Pod, node: NodeInfo, state: CycleState) -> Status:
            return error if node.name == "b" else SUCCESS

    nodes = [node_info(node(name)) for name in "abc"]
    decision = schedule(Profile("t", (Erring(),), ()), pod(), nodes, find=3)
    assert (decision.node, decision.status) == (None, error)


def test_only_feasible_nodes_are_scored() -> None:
    nodes = [node_info(node("big", cpu="8")), node_info(node("small", cpu="1"))]
    decision = schedule(profile_with((MostAllocated(), 1)), pod(cpu="2"), nodes, explain=True)
    assert decision.node == "big"
    assert set(decision.totals) == {"big"}
    assert decision.verdicts["small"]["NodeResourcesFit"].reasons == ("Insufficient cpu",)


def test_every_node_is_checked_when_none_fits() -> None:
    nodes = [node_info(node(f"n{i}", cpu="1")) for i in range(5)]
    decision = schedule(profile_with(), pod(cpu="2"), nodes, find=1, start=3)
    assert decision.node is None
    assert len(decision.verdicts) == 5
    assert decision.message == "0/5 nodes are available: 5 Insufficient cpu."
    assert decision.examined == 5


def test_the_search_stops_after_enough_feasible_nodes_starting_at_start() -> None:
    nodes = [node_info(node(f"n{i}")) for i in range(5)]
    decision = schedule(profile_with((LeastAllocated(), 1)), pod(), nodes, find=2, start=3, explain=True)
    assert list(decision.verdicts) == ["n3", "n4"]
    assert decision.node == "n3"


def test_the_search_wraps_around() -> None:
    nodes = [node_info(node(f"n{i}", cpu="1" if i >= 3 else "4")) for i in range(5)]
    decision = schedule(profile_with(), pod(cpu="2"), nodes, find=1, start=3, explain=True)
    assert list(decision.verdicts) == ["n3", "n4", "n0"]
    assert decision.node == "n0"
    assert decision.examined == 3, "kube's next pod starts after the nodes this one examined"


@pytest.mark.parametrize(
    "the_pod",
    [
        pytest.param(pod(cpu="100m", memory="128Mi"), id="a pod with requests"),
        pytest.param(pod(), id="a pod without requests"),
        pytest.param(pod(owner="rs", cpu="10m"), id="replicas of one controller"),
    ],
)
def test_a_burst_of_identical_pods_spreads_evenly(the_pod: V1Pod) -> None:
    profile = default_profile("x")
    nodes = [node_info(node(f"n{i:02}")) for i in range(7)]
    by_name = {n.name: n for n in nodes}
    for i in range(100):
        decision = schedule(profile, the_pod, nodes)
        assert decision.node is not None, decision.message
        by_name[decision.node].add_pod(replace(PodInfo.of(the_pod, decision.node), uid=f"uid-{i}"))
    counts = Counter({n.name: len(n.pods) for n in nodes})
    assert sum(counts.values()) == 100
    assert max(counts.values()) - min(counts.values()) <= 1, counts


def test_most_allocated_packs_a_burst_onto_one_node() -> None:
    nodes = [node_info(node(f"n{i}", cpu="4", pods="110")) for i in range(3)]
    the_pod = pod(cpu="1")
    placed = []
    for i in range(4):
        decision = schedule(profile_with((MostAllocated(), 1)), the_pod, nodes)
        assert decision.node is not None
        next(n for n in nodes if n.name == decision.node).add_pod(
            replace(PodInfo.of(the_pod, decision.node), uid=f"{i}")
        )
        placed.append(decision.node)
    assert placed == ["n0"] * 4


def test_untolerated_prefer_no_schedule_loses_to_weights() -> None:
    plugin = TaintToleration()
    nodes = [node_info(node("a", taints=[taint("spot", "PreferNoSchedule")])), node_info(node("b"))]
    decision = schedule(Profile("t", (plugin,), ((plugin, 3),)), pod(), nodes)
    assert decision.node == "b"
    assert decision.totals == {"a": 0, "b": 300}


@pytest.mark.parametrize(
    "total, percentage, expected",
    [
        pytest.param(0, 0, 0, id="no nodes"),
        pytest.param(99, 0, 99, id="under 100 nodes every node is checked"),
        pytest.param(100, 0, 100, id="at least 100 nodes are checked"),
        pytest.param(500, 0, 230, id="the adaptive percentage: 50 - 500/125 = 46 percent"),
        pytest.param(1000, 0, 420, id="1000 nodes: 42 percent"),
        pytest.param(5000, 0, 500, id="5000 nodes: 10 percent"),
        pytest.param(6000, 0, 300, id="the adaptive percentage bottoms out at 5"),
        pytest.param(20000, 0, 1000, id="20000 nodes: 5 percent"),
        pytest.param(1000, 30, 300, id="an explicit percentage"),
        pytest.param(200, 10, 100, id="an explicit percentage still checks 100 nodes"),
        pytest.param(1000, 100, 1000, id="100 percent checks every node"),
    ],
)
def test_nodes_to_find(total: int, percentage: int, expected: int) -> None:
    assert nodes_to_find(total, percentage) == expected


def test_a_prefilter_rejection_is_reported_once_as_kube_does() -> None:
    from tests.builders import claim, storage_class, volume, volume_objects, with_volumes

    nodes = [node_info(node("a")), node_info(node("b"))]
    objects = with_volumes(
        volume_objects(claim("unbound", storage_class="fast"), storage_class("fast"), claim("ok", volume="pv"))
    )
    decision = schedule(default_profile("x"), pod(claims=["unbound"]), nodes, objects=objects)
    assert decision.node is None
    assert decision.message == "0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims."
    assert {v["VolumeBinding"].code for v in decision.verdicts.values()} == {Code.UNRESOLVABLE}
    objects = with_volumes(volume_objects(claim("ok", volume="pv"), volume("pv")))
    assert schedule(default_profile("x"), pod(claims=["ok"]), nodes, objects=objects).node == "a"


def test_the_filter_cache_judges_a_shape_once_per_node_list_and_keeps_a_bounded_number() -> None:
    nodes = [node_info(node("a"))]
    judged: list[str] = []

    def mask(cache: FilterCache, the_pod: V1Pod, on: list[NodeInfo]) -> None:
        def judge() -> npt.NDArray[np.bool_]:
            assert the_pod.spec and the_pod.spec.node_selector
            judged.append(the_pod.spec.node_selector["n"])
            return np.ones(len(on), np.bool_)

        cache.mask(the_pod, on, judge)

    cache = FilterCache()
    shapes = [pod(node_selector={"n": str(i)}) for i in range(MAX_SHAPES + 1)]
    mask(cache, shapes[0], nodes)
    mask(cache, pod("other", node_selector={"n": "0"}), nodes)  # the same shape
    assert judged == ["0"]
    for shape in shapes[1:MAX_SHAPES]:
        mask(cache, shape, nodes)
    mask(cache, shapes[0], nodes)  # still kept: the cache is full, not over
    assert judged[-1] == str(MAX_SHAPES - 1)
    mask(cache, shapes[MAX_SHAPES], nodes)  # one more: the cache starts again
    mask(cache, shapes[0], nodes)
    assert judged[-2:] == [str(MAX_SHAPES), "0"]
    mask(cache, shapes[0], list(nodes))  # another node list
    assert judged[-2:] == ["0", "0"]
