"""DefaultPreemption's decision: eligibility, victims per node, PodDisruptionBudgets, the node ordering, messages;
and nominated pods in filtering (kube's RunFilterPluginsWithNominatedPods)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest
from kubernetes.client import V1LabelSelector, V1Pod, V1PodCondition, V1PodDisruptionBudget, V1PodStatus

from policies.algorithm import replaced, schedule
from policies.config import default_profile
from policies.framework import CycleState, FilterPlugin, NodeInfo, PodInfo, Profile, Status
from policies.inter_pod_affinity import InterPodAffinity
from policies.preemption import (
    NO_VICTIMS,
    NOT_HELPFUL,
    Budget,
    Candidate,
    Preemption,
    candidates_to_find,
    disruption_message,
    fit_error_with_preemption,
    ineligible,
    lower_priority_nominated,
    pick_one,
    preempt,
    preempted_message,
    split_by_budgets,
)
from policies.topology_spread import PodTopologySpread
from tests import test_inter_pod_affinity, test_topology_spread
from tests.builders import ZONE, label_selector, node, node_info, pod, pod_term, spread, taint

PROFILE = default_profile("default-scheduler")
WEB, DB = {"app": "web"}, {"app": "db"}


def ppod(
    name: str,
    priority: int = 0,
    *,
    on: str | None = None,
    start: int | None = None,
    policy: str | None = None,
    nominated: str | None = None,
    **kwargs: Any,
) -> V1Pod:
    """A pod of `priority` (on node `on`, started `start` seconds after 2026-01-01)."""
    p = pod(name, node_name=on, **kwargs)
    assert p.spec is not None
    p.spec.priority = priority
    p.spec.preemption_policy = policy
    started = datetime.fromtimestamp(1767225600 + start, UTC) if start is not None else None
    p.status = V1PodStatus(start_time=started, nominated_node_name=nominated)
    return p


def info(name: str, *pods: V1Pod, **kwargs: Any) -> NodeInfo:
    return node_info(node(name, **kwargs), pods)


def record(p: V1Pod, node_name: str | None = None) -> PodInfo:
    return PodInfo.of(p, node_name)


def run(
    preemptor: V1Pod,
    nodes: Sequence[NodeInfo],
    budgets: Sequence[Budget] = (),
    nominated: Mapping[str, Sequence[PodInfo]] | None = None,
) -> Preemption:
    """schedule() the pod, which must fit nowhere, then preempt() with its verdicts."""
    decision = schedule(PROFILE, preemptor, nodes, nominated=nominated)
    assert decision.node is None, decision
    return preempt(PROFILE, preemptor, nodes, decision.verdicts, budgets, nominated=nominated)


def victims(result: Preemption) -> tuple[str | None, list[str]]:
    c = result.candidate
    return (c.node, [v.name for v in c.victims]) if c else (None, [])


def budget(match: Mapping[str, str] | None, allowed: int, *, disrupted: Sequence[str] = (), **kw: Any) -> Budget:
    selector = label_selector(match) if match is not None else None
    return Budget(kw.get("namespace", "default"), kw.get("name", "pdb"), selector, allowed, frozenset(disrupted))


# --- victims on one node -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "preemptor, pods, expected",
    [
        pytest.param(
            ppod("p", 10, cpu="1"),
            [ppod("a", 1, cpu="1", start=1), ppod("b", 2, cpu="1", start=2), ppod("c", 3, cpu="2", start=3)],
            ["a"],
            id="the fewest victims: one lower-priority pod is enough, the least important one",
        ),
        pytest.param(
            ppod("p", 10, cpu="2"),
            [ppod("a", 1, cpu="1", start=1), ppod("b", 2, cpu="1", start=2), ppod("c", 3, cpu="2", start=3)],
            ["b", "a"],
            id="reprieve goes most important first: c stays, so a and b go, though c alone would do (kube's greedy)",
        ),
        pytest.param(
            ppod("p", 10, cpu="1"),
            [ppod("old", 1, cpu="2", start=1), ppod("new", 1, cpu="2", start=5)],
            ["new"],
            id="equal priority: the earlier-started pod is more important, the later one goes",
        ),
        pytest.param(
            ppod("p", 10, cpu="1"),
            [ppod("unstarted", 1, cpu="2"), ppod("started", 1, cpu="2", start=5)],
            ["unstarted"],
            id="a pod without a start time counts as starting now, the latest",
        ),
        pytest.param(
            ppod("p", 10, cpu="3"),
            [ppod("a", 1, cpu="1", start=1), ppod("b", 2, cpu="1", start=2), ppod("c", 3, cpu="2", start=3)],
            ["c", "a"],
            id="c cannot stay, b can, a cannot: the victims come most important first",
        ),
        pytest.param(
            ppod("p", 10, cpu="2"),
            [ppod("equal", 10, cpu="2"), ppod("low", 1, cpu="2")],
            ["low"],
            id="a pod of equal priority is never a victim",
        ),
    ],
)
def test_victims_on_one_node(preemptor: V1Pod, pods: list[V1Pod], expected: list[str]) -> None:
    assert victims(run(preemptor, [info("n1", *pods)])) == ("n1", expected)


def test_equal_or_higher_priority_pods_are_never_victims() -> None:
    nodes = [info("n1", ppod("equal", 10, cpu="4")), info("n2", ppod("higher", 11, cpu="4"))]
    result = run(ppod("p", 10, cpu="1"), nodes)
    assert result == Preemption(
        None,
        "preemption: 0/2 nodes are available: 2 No preemption victims found for incoming pod.",
        clear_nomination=True,
    )


def test_nodes_unresolvable_for_the_pod_are_not_tried() -> None:
    nodes = [
        info("tainted", ppod("a", 0, cpu="4"), taints=[taint("gpu")]),  # TaintToleration: unresolvable
        info("small", ppod("b", 0, cpu="1"), cpu="2"),  # the pod's 4 cpu exceed the node: unresolvable
        info("full", ppod("c", 20, cpu="4")),  # resolvable, but nothing to evict
    ]
    result = run(ppod("p", 10, cpu="4"), nodes)
    assert result.candidate is None
    assert (NO_VICTIMS, NOT_HELPFUL) == (
        "No preemption victims found for incoming pod",
        "Preemption is not helpful for scheduling",
    )
    assert result.message == (
        "preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, "
        "2 Preemption is not helpful for scheduling."
    )


def test_a_node_still_failing_without_its_victims_reports_that_filter() -> None:
    """kube records the first failing filter's status for a node the dry run could not make fit."""
    nodes = [info("n1", ppod("low", 0, cpu="1"), ppod("high", 20, cpu="3"))]
    result = run(ppod("p", 10, cpu="2"), nodes)
    assert result.message == "preemption: 0/1 nodes are available: 1 Insufficient cpu."


def test_no_unschedulable_node_at_all() -> None:
    result = run(ppod("p", 10, cpu="1"), [info("n1", ppod("a", 0), unschedulable=True)])
    assert result == Preemption(
        None, "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.", True
    )


# --- filters that read the cluster -----------------------------------------------------------------------------


def test_spreading_is_resolved_by_evicting_a_pod() -> None:
    """n1 has two web pods, n2 one (of higher priority, and n2 is full): on n1 the skew is 2 + 1 - 1 > 1.
    Evicting both makes room; the older is reprieved (skew 1 + 1 - 1), the newer goes."""
    constraint = spread("kubernetes.io/hostname", 1, match=WEB)
    nodes = [
        info("n1", ppod("w1", 0, labels=WEB, start=1), ppod("w2", 0, labels=WEB, start=2)),
        info("n2", ppod("w3", 20, labels=WEB, cpu="4")),
    ]
    result = run(ppod("p", 10, cpu="1", labels=WEB, spread=[constraint]), nodes)
    assert victims(result) == ("n1", ["w2"])


def test_the_pods_anti_affinity_is_resolved_by_evicting_the_pod_in_the_way() -> None:
    nodes = [info("n1", ppod("db", 0, labels=DB), ppod("other", 0))]
    result = run(ppod("p", 10, anti_affinity=[pod_term(match=DB)]), nodes)
    assert victims(result) == ("n1", ["db"])


def test_an_existing_pods_anti_affinity_is_resolved_by_evicting_it() -> None:
    nodes = [info("n1", ppod("picky", 0, anti_affinity=[pod_term(match=WEB)]), ppod("other", 0))]
    result = run(ppod("p", 10, labels=WEB), nodes)
    assert victims(result) == ("n1", ["picky"])


def test_affinity_to_a_missing_pod_is_not_helped_by_preemption() -> None:
    nodes = [info("n1", ppod("a", 0, cpu="4"))]
    decision = schedule(PROFILE, ppod("p", 10, affinity=[pod_term(ZONE, match=DB)]), nodes)
    assert decision.node is None
    result = preempt(PROFILE, ppod("p", 10, affinity=[pod_term(ZONE, match=DB)]), nodes, decision.verdicts, [])
    assert result.message == "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."


# --- PodDisruptionBudgets ----------------------------------------------------------------------------------------


def test_a_budget_makes_the_other_node_win() -> None:
    nodes = [info("n1", ppod("db", 1, cpu="4", labels=DB)), info("n2", ppod("web", 1, cpu="4", labels=WEB))]
    assert victims(run(ppod("p", 10, cpu="1"), nodes)) == ("n1", ["db"])  # without budgets: the first node
    result = run(ppod("p", 10, cpu="1"), nodes, [budget(DB, 0)])
    assert victims(result) == ("n2", ["web"])
    assert result.candidate is not None and result.candidate.pdb_violations == 0


def test_a_violating_candidate_is_still_taken_when_it_is_the_only_one() -> None:
    result = run(ppod("p", 10, cpu="1"), [info("n1", ppod("db", 1, cpu="4", labels=DB))], [budget(DB, 0)])
    assert victims(result) == ("n1", ["db"])
    assert result.candidate is not None and result.candidate.pdb_violations == 1


def test_pdb_violating_victims_are_reprieved_first() -> None:
    """Without the budget the lower-priority db pod goes; with it, db is tried first and kept, web goes."""
    pods = [ppod("db", 1, cpu="2", labels=DB), ppod("web", 2, cpu="2", labels=WEB)]
    assert victims(run(ppod("p", 10, cpu="2"), [info("n1", *pods)])) == ("n1", ["db"])
    result = run(ppod("p", 10, cpu="2"), [info("n1", *pods)], [budget(DB, 0)])
    assert victims(result) == ("n1", ["web"])
    assert result.candidate is not None and result.candidate.pdb_violations == 0


def _names(split: tuple[list[PodInfo], list[PodInfo]]) -> tuple[list[str], list[str]]:
    return [p.name for p in split[0]], [p.name for p in split[1]]


DB1, DB2 = record(ppod("db1", labels=DB)), record(ppod("db2", labels=DB))


@pytest.mark.parametrize(
    "pods, budgets, expected",
    [
        pytest.param([DB1, DB2], [budget(DB, 1)], (["db2"], ["db1"]), id="the allowance is spent pod by pod, in order"),
        pytest.param([DB1, DB2], [budget(DB, 2)], ([], ["db1", "db2"]), id="enough allowance for both"),
        pytest.param([DB1, DB2], [budget(WEB, 0)], ([], ["db1", "db2"]), id="a budget selecting other pods"),
        pytest.param(
            [DB1, DB2], [budget(DB, 0, namespace="other")], ([], ["db1", "db2"]), id="a budget in another namespace"
        ),
        pytest.param(
            [DB1, DB2],
            [budget(DB, 0, disrupted=["db1"])],
            (["db2"], ["db1"]),
            id="a pod the budget already counts as disrupted does not violate it, nor spend it",
        ),
        pytest.param([DB1], [budget(None, 0)], ([], ["db1"]), id="a budget without a selector selects nothing"),
        pytest.param([DB1], [budget({}, 0)], ([], ["db1"]), id="an empty selector selects nothing either (kube)"),
        pytest.param(
            [record(ppod("bare"))], [budget({}, 0)], ([], ["bare"]), id="a pod without labels violates nothing"
        ),
        pytest.param(
            [DB1, DB2],
            [budget(DB, 1, name="a"), budget(DB, 0, name="b")],
            (["db1", "db2"], []),
            id="any matching budget going below zero makes the pod violating",
        ),
    ],
)
def test_split_by_budgets(pods: list[PodInfo], budgets: list[Budget], expected: tuple[list[str], list[str]]) -> None:
    assert _names(split_by_budgets(pods, budgets)) == expected


def test_an_invalid_selector_selects_nothing() -> None:
    bad = V1LabelSelector.from_dict({"matchExpressions": [{"key": "app", "operator": "NotIn"}]})  # needs values
    assert _names(split_by_budgets([DB1], [Budget("default", "bad", bad, 0, frozenset())])) == ([], ["db1"])


# --- picking a node -------------------------------------------------------------------------------------------


def v(name: str, priority: int, start: int | None = None) -> PodInfo:
    return record(ppod(name, priority, start=start))


@pytest.mark.parametrize(
    "candidates, expected",
    [
        pytest.param(
            [Candidate("a", (v("x", 1),), 1), Candidate("b", (v("y", 5), v("z", 5)), 0)],
            "b",
            id="fewest PDB violations first",
        ),
        pytest.param(
            [Candidate("a", (v("x", 5),), 0), Candidate("b", (v("y", 3), v("z", 3)), 0)],
            "b",
            id="then the lowest highest victim priority",
        ),
        pytest.param(
            [Candidate("a", (v("x", 3), v("y", 2)), 0), Candidate("b", (v("z", 3), v("w", 1)), 0)],
            "b",
            id="then the smallest sum of priorities",
        ),
        pytest.param(
            [Candidate("a", (v("x", -5), v("y", -5)), 0), Candidate("b", (v("z", -5),), 0)],
            "b",
            id="negative priorities are offset by 2^31, so fewer such victims is a smaller sum",
        ),
        pytest.param(
            [Candidate("a", (v("x", 3), v("y", 0)), 0), Candidate("b", (v("z", 3),), 0)],
            "b",
            id="a priority-0 victim still adds to the sum",
        ),
        pytest.param(
            [Candidate("a", (v("x", 3, start=10),), 0), Candidate("b", (v("y", 3, start=20),), 0)],
            "b",
            id="then the latest start of the most important victims",
        ),
        pytest.param(
            [
                Candidate("a", (v("x", 3, start=30), v("y", 2, start=40)), 0),
                Candidate("b", (v("z", 3, start=35), v("w", 2, start=1)), 0),
            ],
            "b",
            id="only the start times of the highest-priority victims count",
        ),
        pytest.param(
            [Candidate("a", (v("x", 3, start=10),), 0), Candidate("b", (v("y", 3),), 0)],
            "b",
            id="a victim without a start time started now, the latest",
        ),
    ],
)
def test_pick_one(candidates: list[Candidate], expected: str) -> None:
    assert pick_one(candidates).node == expected
    assert pick_one(candidates[::-1]).node == expected  # the rule decides, not the order


def test_pick_one_takes_the_first_of_equals() -> None:
    a, b = Candidate("a", (v("x", 3, start=10),), 0), Candidate("b", (v("y", 3, start=10),), 0)
    assert pick_one([a, b]) is a
    assert pick_one([b, a]) is b


def test_the_node_with_lower_priority_victims_wins_in_a_full_run() -> None:
    nodes = [info("n1", ppod("mid", 5, cpu="4")), info("n2", ppod("low", 1, cpu="4"))]
    assert victims(run(ppod("p", 10, cpu="1"), nodes)) == ("n2", ["low"])


@pytest.mark.parametrize(
    "potential, wanted",
    [(1, 1), (50, 50), (100, 100), (999, 100), (1000, 100), (2000, 200), (5001, 500)],
)
def test_candidates_to_find(potential: int, wanted: int) -> None:
    """kube's calculateNumCandidates: 10% of the nodes, at least 100, at most all of them."""
    assert candidates_to_find(potential) == wanted


def test_the_dry_run_stops_after_enough_candidates() -> None:
    """101 nodes: 100 candidates are enough, so the better last node is never tried."""
    nodes = [info(f"n{i:03}", ppod(f"v{i}", 5, cpu="4")) for i in range(100)]
    nodes.append(info("n100", ppod("v100", 1, cpu="4")))
    assert victims(run(ppod("p", 10, cpu="1"), nodes)) == ("n000", ["v0"])


def test_the_dry_run_goes_on_until_a_candidate_without_violations() -> None:
    nodes = [info(f"n{i:03}", ppod(f"v{i}", 1, cpu="4", labels=DB)) for i in range(100)]
    nodes.append(info("n100", ppod("v100", 5, cpu="4", labels=WEB)))
    result = run(ppod("p", 10, cpu="1"), nodes, [budget(DB, 0)])
    assert victims(result) == ("n100", ["v100"])


# --- eligibility ---------------------------------------------------------------------------------------------


def test_preemption_policy_never() -> None:
    nodes = [info("n1", ppod("low", 0, cpu="4"))]
    result = run(ppod("p", 10, cpu="1", policy="Never"), nodes)
    assert result == Preemption(None, "preemption: not eligible due to preemptionPolicy=Never.")


def terminating(p: V1Pod, reason: str = "PreemptionByScheduler") -> V1Pod:
    assert p.metadata is not None and p.status is not None
    p.metadata.deletion_timestamp = datetime(2026, 1, 1, tzinfo=UTC)
    p.status.conditions = [V1PodCondition(type="DisruptionTarget", status="True", reason=reason)]
    return p


@pytest.mark.parametrize(
    "on_node, message",
    [
        pytest.param(
            [terminating(ppod("victim", 0, cpu="4"))],
            "not eligible due to a terminating pod on the nominated node.",
            id="a lower-priority pod still terminating by preemption: wait for it",
        ),
        pytest.param(
            [terminating(ppod("other", 20, cpu="4"))], None, id="a terminating pod of higher priority does not count"
        ),
        pytest.param(
            [terminating(ppod("evicted", 0, cpu="4"), reason="EvictionByEvictionAPI")],
            None,
            id="a pod terminating for another reason does not count",
        ),
        pytest.param([ppod("running", 0, cpu="4")], None, id="a pod not terminating does not count"),
    ],
)
def test_a_terminating_victim_on_the_nominated_node(on_node: list[V1Pod], message: str | None) -> None:
    preemptor = ppod("p", 10, cpu="1", nominated="n1")
    nodes = {"n1": info("n1", *on_node)}
    assert ineligible(preemptor, nodes) == message


def test_a_nominated_node_now_unresolvable_lets_the_pod_preempt_again() -> None:
    preemptor = ppod("p", 10, cpu="1", nominated="n1")
    tainted = info("n1", terminating(ppod("victim", 0, cpu="4")), taints=[taint("gpu")])
    verdicts = schedule(PROFILE, preemptor, [tainted]).verdicts
    assert ineligible(preemptor, {"n1": tainted}) is not None
    assert ineligible(preemptor, {"n1": tainted}, verdicts) is None
    assert ineligible(preemptor, {"n1": tainted}, {}) is None  # a node without verdicts: kube's default status


def test_preempt_waits_for_the_terminating_victim() -> None:
    nodes = [info("n1", terminating(ppod("victim", 0, cpu="4")))]
    result = run(ppod("p", 10, cpu="1", nominated="n1"), nodes)
    assert result == Preemption(None, "preemption: not eligible due to a terminating pod on the nominated node.")


# --- nominated pods ------------------------------------------------------------------------------------------


NOMINATED = ppod("nominee", 10, cpu="3")


@pytest.mark.parametrize(
    "the_pod, fits",
    [
        pytest.param(ppod("p", 5, cpu="2"), False, id="a lower-priority pod leaves room for the nominated pod"),
        pytest.param(ppod("p", 10, cpu="2"), False, id="so does one of equal priority"),
        pytest.param(ppod("p", 20, cpu="2"), True, id="a higher-priority pod may take the room"),
        pytest.param(ppod("small", 5, cpu="1"), True, id="a pod fitting beside the nominated pod"),
        pytest.param(NOMINATED, True, id="the nominated pod itself is not in its own way"),
    ],
)
def test_nominated_pods_in_filtering(the_pod: V1Pod, fits: bool) -> None:
    nodes = [info("n1")]
    decision = schedule(PROFILE, the_pod, nodes, nominated={"n1": [record(NOMINATED, "n1")]})
    assert (decision.node == "n1") is fits
    if not fits:
        assert decision.message == "0/1 nodes are available: 1 Insufficient cpu."
    explained = schedule(PROFILE, the_pod, nodes, nominated={"n1": [record(NOMINATED, "n1")]}, explain=True)
    assert (explained.node == "n1") is fits


def test_the_pod_must_fit_without_the_nominated_pods_too() -> None:
    """Affinity to a pod that is only nominated is not satisfied: the nominated pod may go elsewhere."""
    nominee = ppod("web", 10, labels=WEB)
    the_pod = ppod("p", 5, affinity=[pod_term(match=WEB)])
    nodes = [info("n1"), info("n2", ppod("web-elsewhere", 0, labels={"app": "other"}))]
    decision = schedule(PROFILE, the_pod, nodes, nominated={"n1": [record(nominee, "n1")]})
    assert decision.node is None
    running = [info("n1", ppod("web", 10, labels=WEB)), nodes[1]]
    assert schedule(PROFILE, the_pod, running).node == "n1"  # were it running there, the pod would fit


def test_without_nominated_pods_nothing_changes() -> None:
    nodes = [info("n1", ppod("a", 0, cpu="3")), info("n2")]
    nothing: list[dict[str, list[PodInfo]] | None] = [None, {}, {"n1": []}]
    for nominated in nothing:
        assert schedule(PROFILE, ppod("p", 5, cpu="2"), nodes, nominated=nominated).node == "n2"


def test_preemption_counts_nominated_pods() -> None:
    """Room for the preemptor must be left beside a nominated pod of higher priority."""
    nodes = [info("n1", ppod("low", 0, cpu="2"))]
    nominee = record(ppod("nominee", 50, cpu="2"), "n1")
    assert victims(run(ppod("p", 10, cpu="2"), nodes, nominated={"n1": [nominee]})) == ("n1", ["low"])
    big = record(ppod("big", 50, cpu="3"), "n1")
    result = run(ppod("p", 10, cpu="2"), nodes, nominated={"n1": [big]})
    assert result.message == "preemption: 0/1 nodes are available: 1 Insufficient cpu."


def test_a_pod_goes_to_its_nominated_node_if_it_fits() -> None:
    """kube's evaluateNominatedNode: n2 would score better (emptier), but the pod was nominated to n1."""
    nodes = [info("n1", ppod("a", 0, cpu="2")), info("n2")]
    assert schedule(PROFILE, ppod("p", 10, cpu="1"), nodes).node == "n2"
    assert schedule(PROFILE, ppod("p", 10, cpu="1", nominated="n1"), nodes).node == "n1"
    assert schedule(PROFILE, ppod("p", 10, cpu="1", nominated="n1"), nodes, explain=True).node == "n1"
    assert schedule(PROFILE, ppod("p", 10, cpu="3", nominated="n1"), nodes).node == "n2"  # no longer fits n1
    assert schedule(PROFILE, ppod("p", 10, cpu="1", nominated="gone"), nodes).node == "n2"


# --- messages -----------------------------------------------------------------------------------------------


def test_the_success_message() -> None:
    nodes = [info("n1", ppod("a", 0, cpu="2"), ppod("b", 0, cpu="2"))]
    result = run(ppod("p", 10, cpu="4"), nodes)
    assert result.message == "preemption: found a potential placement for pod on node n1, preempting 2 victims"
    assert not result.clear_nomination


@pytest.mark.parametrize(
    "preemption, expected",
    [
        pytest.param(
            Preemption(None, "preemption: not eligible due to preemptionPolicy=Never."),
            "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never.",
            id="the PostFilter message follows the filters' after a space",
        ),
        pytest.param(Preemption(None, ""), "0/1 nodes are available: 1 Insufficient cpu.", id="no PostFilter message"),
    ],
)
def test_fit_error_with_preemption(preemption: Preemption, expected: str) -> None:
    assert fit_error_with_preemption("0/1 nodes are available: 1 Insufficient cpu.", preemption) == expected


def test_no_nodes_no_preemption() -> None:
    assert preempt(PROFILE, ppod("p", 10), [], {}, []) == Preemption(None, "")


def test_the_executors_strings() -> None:
    assert preempted_message("uid-1", "n1") == "Preempted by pod uid-1 on node n1"
    assert disruption_message("default-scheduler") == (
        "default-scheduler: preempting to accommodate a higher priority pod"
    )


def test_a_filter_error_in_the_dry_run_is_reported() -> None:
    nodes = [info("n1", ppod("low", 0, cpu="4"))]
    preemptor = ppod("p", 10, cpu="1")
    decision = schedule(PROFILE, preemptor, nodes)
    verdicts: dict[str, dict[str, Status]] = decision.verdicts
    broken = Profile(PROFILE.scheduler_name, (*PROFILE.filters, _Broken()), PROFILE.scores)
    result = preempt(broken, preemptor, nodes, verdicts, [])
    assert result.candidate is None
    assert result.message.startswith('preemption: running filter plugin "Broken": RuntimeError: boom')
    assert not result.clear_nomination


class _Broken:
    name = "Broken"
    node_only: ClassVar[bool] = False

    def filter(self, pod: V1Pod, node: NodeInfo, state: object) -> Status:
        raise RuntimeError("boom")


# --- a changed node's facts: adjusted from the cluster's, as a full recount would give -------------------------


def _changes(new_pod: V1Pod, node: NodeInfo) -> list[NodeInfo]:
    """The node without each of its pods, without any, and with the incoming pod added (a nominated pod)."""
    out = []
    for uid in node.pods:
        clone = node.clone()
        clone.remove_pod(uid)
        out.append(clone)
    empty = node.clone()
    for uid in list(empty.pods):
        empty.remove_pod(uid)
    added = node.clone()
    added.add_pod(PodInfo.of(new_pod, node.name))
    return [*out, empty, added]


def _cases(module: Any) -> list[Any]:
    """The cases of a filter's table test (new_pod, nodes, expected)."""
    cases: list[Any] = module.test_filter.pytestmark[0].args[1]
    return cases


@pytest.mark.parametrize(
    "plugin, new_pod, nodes, expected",
    [
        *[pytest.param(PodTopologySpread(), *c.values, id=f"spread: {c.id}") for c in _cases(test_topology_spread)],
        *[pytest.param(InterPodAffinity(), *c.values, id=f"affinity: {c.id}") for c in _cases(test_inter_pod_affinity)],
    ],
)
def test_a_derived_state_agrees_with_a_full_recount(
    plugin: FilterPlugin, new_pod: V1Pod, nodes: list[NodeInfo], expected: object
) -> None:
    """CycleState.standing_in adjusts the cluster's counts for the one changed node (kube's AddPod/RemovePod);
    every verdict, on every node, must be what counting the changed cluster from scratch gives."""
    root = CycleState(nodes)
    for i, original in enumerate(nodes):
        for changed in _changes(new_pod, original):
            cluster = replaced(nodes, i, changed)
            derived, fresh = root.standing_in(cluster, i), CycleState(cluster)
            assert [plugin.filter(new_pod, n, derived) for n in cluster] == [
                plugin.filter(new_pod, n, fresh) for n in cluster
            ], (original.name, sorted(changed.pods))


def test_lower_priority_nominated_pods_lose_their_nomination() -> None:
    nominated = [record(ppod("low", 5), "n1"), record(ppod("equal", 10), "n1"), record(ppod("high", 20), "n1")]
    assert [p.name for p in lower_priority_nominated(ppod("p", 10), nominated)] == ["low"]


def test_a_budget_from_the_api_object() -> None:
    pdb = V1PodDisruptionBudget.from_dict(
        {
            "metadata": {"namespace": "shop", "name": "db"},
            "spec": {"selector": {"matchLabels": DB}, "minAvailable": 1},
            "status": {
                "disruptionsAllowed": 2,
                "disruptedPods": {"db-0": "2026-01-01T00:00:00Z"},
                "currentHealthy": 3,
                "desiredHealthy": 1,
                "expectedPods": 3,
            },
        }
    )
    assert pdb is not None
    assert Budget.of(pdb) == Budget("shop", "db", label_selector(DB), 2, frozenset({"db-0"}))
    assert Budget.of(V1PodDisruptionBudget()) == Budget("", "", None, 0, frozenset())
