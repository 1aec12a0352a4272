"""PodTopologySpread: DoNotSchedule constraints filter, ScheduleAnyway constraints score.

Most cases use three zones: node a in z1 with two `app=web` pods, b in z2 with one, c in z3 with none.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes.client import V1Pod

from policies.algorithm import schedule
from policies.framework import (
    ClusterObjects,
    Code,
    CycleState,
    NodeFacts,
    NodeInfo,
    PodInfo,
    Profile,
    WorkloadSelectors,
)
from policies.node_affinity import NodeAffinity
from policies.node_resources_fit import NodeResourcesFit
from policies.node_table import NodeList
from policies.topology_spread import (
    MISMATCH,
    MISSING_LABEL,
    PodTopologySpread,
    constraints,
    domain_counts,
    system_default_constraints,
)
from tests.builders import (
    HOSTNAME,
    ZONE,
    expr,
    filter_reasons,
    held,
    label_selector,
    node,
    node_with_pods,
    pod,
    selector,
    spread,
    taint,
    zone_nodes,
)

WEB = {"app": "web"}


def web(name: str, on: str, **kwargs: Any) -> V1Pod:
    return pod(name, labels=kwargs.pop("labels", WEB), node_name=on, **kwargs)


def three_zones(**extra_pods: list[V1Pod]) -> list[NodeInfo]:
    """a/z1: 2 web pods, b/z2: 1, c/z3: 0, plus `extra_pods` per node name."""
    base = {"a": [web("w1", "a"), web("w2", "a")], "b": [web("w3", "b")], "c": []}
    return zone_nodes(**{n: (f"z{i + 1}", [*ps, *extra_pods.get(n, [])]) for i, (n, ps) in enumerate(base.items())})


def incoming(*constraints: dict[str, Any], **kwargs: Any) -> V1Pod:
    return pod("new", labels=kwargs.pop("labels", WEB), spread=constraints, **kwargs)


ZONE_SKEW_1 = spread(ZONE, 1, match=WEB)
UNTOLERATED = taint("gpu", value="true")


@pytest.mark.parametrize(
    "new_pod, nodes, expected",
    [
        pytest.param(
            incoming(ZONE_SKEW_1),
            three_zones(),
            {"a": MISMATCH, "b": MISMATCH, "c": None},
            id="with maxSkew 1 only the empty zone keeps the skew",
        ),
        pytest.param(
            incoming(spread(ZONE, 2, match=WEB)),
            three_zones(),
            {"a": MISMATCH, "b": None, "c": None},
            id="maxSkew 2 also allows the zone with one pod",
        ),
        pytest.param(
            incoming(ZONE_SKEW_1, labels={"app": "api"}),
            three_zones(),
            {"a": MISMATCH, "b": None, "c": None},
            id="a pod outside its own selector does not add itself to the count",
        ),
        pytest.param(
            incoming(ZONE_SKEW_1),
            [*three_zones(), node_with_pods("d")],
            {"a": MISMATCH, "b": MISMATCH, "c": None, "d": MISSING_LABEL},
            id="a node without the topology key is rejected for a missing label",
        ),
        pytest.param(
            incoming(ZONE_SKEW_1),
            three_zones(c=[web("other-ns", "c", namespace="prod")]),
            {"a": MISMATCH, "b": MISMATCH, "c": None},
            id="pods in another namespace do not count",
        ),
        pytest.param(
            incoming(ZONE_SKEW_1),
            three_zones(c=[web("leaving", "c", deleting=True)]),
            {"a": MISMATCH, "b": MISMATCH, "c": None},
            id="pods being deleted do not count",
        ),
        pytest.param(
            incoming(ZONE_SKEW_1),
            three_zones(c=[web("w4", "c")]),
            {"a": MISMATCH, "b": None, "c": None},
            id="the global minimum is the least crowded zone",
        ),
        pytest.param(
            incoming(ZONE_SKEW_1, node_selector={"disk": "ssd"}),
            [
                node_with_pods("a", labels={ZONE: "z1", "disk": "ssd"}, pods=[web("w1", "a"), web("w2", "a")]),
                node_with_pods("b", labels={ZONE: "z2", "disk": "ssd"}, pods=[web("w3", "b")]),
                node_with_pods("c", labels={ZONE: "z3"}),
            ],
            {"a": MISMATCH, "b": None, "c": None},
            id="zones of nodes outside the pod's nodeSelector are not counted (nodeAffinityPolicy Honor)",
        ),
        pytest.param(
            incoming(spread(ZONE, 1, match=WEB, nodeAffinityPolicy="Ignore"), node_selector={"disk": "ssd"}),
            [
                node_with_pods("a", labels={ZONE: "z1", "disk": "ssd"}, pods=[web("w1", "a"), web("w2", "a")]),
                node_with_pods("b", labels={ZONE: "z2", "disk": "ssd"}, pods=[web("w3", "b")]),
                node_with_pods("c", labels={ZONE: "z3"}),
            ],
            {"a": MISMATCH, "b": MISMATCH, "c": None},
            id="nodeAffinityPolicy Ignore counts every zone",
        ),
        pytest.param(
            incoming(ZONE_SKEW_1),
            [*three_zones()[:2], node_with_pods("c", labels={ZONE: "z3"}, taints=[UNTOLERATED])],
            {"a": MISMATCH, "b": MISMATCH, "c": None},
            id="tainted nodes count by default (nodeTaintsPolicy Ignore)",
        ),
        pytest.param(
            incoming(spread(ZONE, 1, match=WEB, nodeTaintsPolicy="Honor")),
            [*three_zones()[:2], node_with_pods("c", labels={ZONE: "z3"}, taints=[UNTOLERATED])],
            {"a": MISMATCH, "b": None, "c": None},
            id="nodeTaintsPolicy Honor leaves out nodes with untolerated taints",
        ),
        pytest.param(
            incoming(spread(ZONE, 1, match=WEB, minDomains=4)),
            three_zones(c=[web("w4", "c")]),
            {"a": MISMATCH, "b": MISMATCH, "c": MISMATCH},
            id="with fewer domains than minDomains the global minimum is 0",
        ),
        pytest.param(
            incoming(spread(ZONE, 1, match=WEB, matchLabelKeys=["rev"]), labels={**WEB, "rev": "2"}),
            three_zones(
                b=[web("new1", "b", labels={**WEB, "rev": "2"})],
                c=[web("old1", "c", labels={**WEB, "rev": "1"}), web("old2", "c", labels={**WEB, "rev": "1"})],
            ),
            {"a": None, "b": MISMATCH, "c": None},
            id="matchLabelKeys count only pods with the pod's own value of those labels",
        ),
        pytest.param(
            incoming(spread(ZONE, 1, match=selector(None, expr("app", "In", "web", "api")))),
            three_zones(c=[web("api", "c", labels={"app": "api"})]),
            {"a": MISMATCH, "b": None, "c": None},
            id="matchExpressions select the counted pods",
        ),
        pytest.param(
            incoming(spread(HOSTNAME, 1, match=WEB)),
            [
                node_with_pods("a", pods=[web("w1", "a")]),
                node_with_pods("b"),
                node_with_pods("c", pods=[web("w2", "c")]),
            ],
            {"a": MISMATCH, "b": None, "c": MISMATCH},
            id="on kubernetes.io/hostname every node is its own domain",
        ),
        pytest.param(
            incoming(spread(ZONE, 1, match=WEB), spread(HOSTNAME, 1, match=WEB)),
            [
                node_with_pods("a", labels={ZONE: "z1"}),
                node_with_pods("b", labels={ZONE: "z1"}, pods=[web("w1", "b")]),
                node_with_pods("c", labels={ZONE: "z2"}, pods=[web("w2", "c")]),
            ],
            {"a": None, "b": MISMATCH, "c": MISMATCH},
            id="every constraint must hold",
        ),
        pytest.param(
            incoming(spread(ZONE, 1, match=WEB), spread("rack", 1, match=WEB)),
            [
                node_with_pods("a", labels={ZONE: "z1", "rack": "r1"}, pods=[web("w1", "a")]),
                node_with_pods("b", labels={ZONE: "z2"}),
                node_with_pods("c", labels={ZONE: "z3", "rack": "r2"}, pods=[web("w2", "c")]),
            ],
            {"a": None, "b": MISSING_LABEL, "c": None},
            id="a node lacking one of the keys counts for none of the constraints",
        ),
        pytest.param(
            incoming(spread(ZONE, 1, match={})),
            three_zones(),
            {"a": None, "b": None, "c": None},
            id="an empty selector counts no pods (kube's countPodsMatchSelector)",
        ),
        pytest.param(
            incoming(spread(ZONE, 1)),
            three_zones(),
            {"a": None, "b": None, "c": None},
            id="a constraint without labelSelector matches nothing, so it never blocks",
        ),
        pytest.param(
            incoming(spread(ZONE, 1, "ScheduleAnyway", match=WEB)),
            [*three_zones(), node_with_pods("d")],
            {"a": None, "b": None, "c": None, "d": None},
            id="ScheduleAnyway constraints never filter",
        ),
        pytest.param(
            pod("plain", labels=WEB),
            three_zones(),
            {"a": None, "b": None, "c": None},
            id="a pod without constraints fits everywhere",
        ),
    ],
)
def test_filter(new_pod: V1Pod, nodes: list[NodeInfo], expected: dict[str, str | None]) -> None:
    assert filter_reasons(PodTopologySpread(), new_pod, nodes) == expected
    # kube's codes (podtopologyspread/filtering.go): evicting pods cannot label a node, but can lower a skew.
    codes = {None: Code.SUCCESS, MISSING_LABEL: Code.UNRESOLVABLE, MISMATCH: Code.UNSCHEDULABLE}
    state = CycleState(nodes)
    assert {n.name: PodTopologySpread().filter(new_pod, n, state).code for n in nodes} == {
        name: codes[reason] for name, reason in expected.items()
    }


SOFT_ZONE = spread(ZONE, 1, "ScheduleAnyway", match=WEB)


@pytest.mark.parametrize(
    "new_pod, nodes, expected",
    [
        # log(3 zones + 2) = 1.61 per pod: raw a=3, b=2, c=0; normalised (max + min - s) / max.
        pytest.param(
            incoming(SOFT_ZONE), three_zones(), {"a": 0, "b": 33, "c": 100}, id="the emptiest zone scores best"
        ),
        # maxSkew - 1 is added to every raw score: a=4, b=3, c=1.
        pytest.param(
            incoming(spread(ZONE, 2, "ScheduleAnyway", match=WEB)),
            three_zones(),
            {"a": 25, "b": 50, "c": 100},
            id="a larger maxSkew waters down the differences",
        ),
        pytest.param(
            incoming(SOFT_ZONE),
            zone_nodes(a=("z1", []), b=("z2", [])),
            {"a": 100, "b": 100},
            id="with no matching pods anywhere every node scores 100",
        ),
        pytest.param(
            incoming(SOFT_ZONE),
            [*three_zones(), node_with_pods("d")],
            {"a": 0, "b": 33, "c": 100, "d": 0},
            id="a node without the key scores 0",
        ),
        pytest.param(
            incoming(SOFT_ZONE, node_selector={"disk": "ssd"}),
            [
                node_with_pods("a", labels={ZONE: "z1", "disk": "ssd"}, pods=[web("w1", "a")]),
                node_with_pods("b", labels={ZONE: "z2", "disk": "ssd"}),
                node_with_pods("c", labels={ZONE: "z3"}, pods=[web("w2", "c"), web("w3", "c")]),
            ],
            {"a": 0, "b": 100},
            id="nodes outside the pod's nodeSelector neither count nor score",
        ),
        # Over the feasible a and b only (kube): log(2 zones + 2) = 1.39 per pod, raw a=3, b=1, (max + min - s) /
        # max gives a=33, b=100; counting c's empty zone would give a=0, b=33.
        pytest.param(
            incoming(SOFT_ZONE, cpu="1"),
            [*three_zones()[:2], node_with_pods("c", labels={ZONE: "z3"}, cpu="500m")],
            {"a": 33, "b": 100},
            id="a full node in the emptiest zone neither sizes the weights nor sets the minimum",
        ),
        pytest.param(
            incoming(spread(HOSTNAME, 1, "ScheduleAnyway", match=WEB)),
            three_zones(),
            {"a": 0, "b": 33, "c": 100},
            id="on kubernetes.io/hostname the weight counts the scored nodes",
        ),
        pytest.param(incoming(ZONE_SKEW_1), three_zones(), {"c": 0}, id="DoNotSchedule constraints do not score"),
    ],
)
def test_score(new_pod: V1Pod, nodes: list[NodeInfo], expected: dict[str, int]) -> None:
    """The normalised score of each node that passed the filters, as the framework runs the plugin."""
    plugin = PodTopologySpread()
    profile = Profile("t", (NodeResourcesFit(), NodeAffinity(), plugin), ((plugin, 1),))
    decision = schedule(profile, new_pod, nodes, explain=True)
    assert {name: by_plugin[plugin.name] for name, by_plugin in decision.scores.items()} == expected


def test_counts_are_computed_once_per_pod() -> None:
    """Later nodes see the same counts, even if a NodeInfo changes mid-cycle (kube's PreFilter snapshot)."""
    from policies.framework import CycleState, PodInfo

    nodes = three_zones()
    state = CycleState(nodes)
    plugin = PodTopologySpread()
    new_pod = incoming(ZONE_SKEW_1)
    assert plugin.filter(new_pod, nodes[2], state).ok
    nodes[2].add_pod(PodInfo.of(web("w9", "c"), nodes[2].name))
    nodes[2].add_pod(PodInfo.of(web("w10", "c"), nodes[2].name))
    assert plugin.filter(new_pod, nodes[2], state).ok


def test_the_counts_the_cache_keeps_follow_every_change_of_its_nodes() -> None:
    """Over all the cache's nodes the counts come from its table, updated node by node (node_table.tally): after
    each change they are what counting every node again gives."""
    nodes = three_zones()
    table = held(nodes).table
    new_pod = incoming(ZONE_SKEW_1, spread(HOSTNAME, 1, match=WEB))
    cs = constraints(new_pod, "DoNotSchedule")

    def check() -> None:
        held = [n for n in nodes if n.table is table]
        assert domain_counts(new_pod, cs, NodeList(held, table)) == domain_counts(new_pod, cs, held)

    check()
    nodes[2].add_pod(PodInfo.of(web("w9", "c"), "c"))  # a matching pod arrives
    check()
    nodes[0].remove_pod(PodInfo.of(web("w1", "a"), "a").uid)  # one leaves
    nodes[1].add_pod(PodInfo.of(pod("other", labels={"app": "db"}), "b"))  # one that does not match
    check()
    nodes[1].set_facts(NodeFacts.of(node("b", labels={ZONE: "z3"})))  # b moves to c's zone: z2 is gone
    check()
    assert "z2" not in domain_counts(new_pod, cs, NodeList(nodes, table))[0]
    table.remove(nodes[2])  # c leaves
    check()
    d = zone_nodes(d=("z4", [web("w4", "d")]))[0]
    table.add(d)
    nodes.append(d)
    check()


# --- kube's system defaults: ScheduleAnyway, maxSkew 3 on the hostname and 5 on the zone -----------------


def owned(**kwargs: Any) -> V1Pod:
    return pod("new", labels=kwargs.pop("labels", WEB), owner="rs", **kwargs)


WEB_SERVICE = WorkloadSelectors(services={"default": {"web": WEB}})
WEB_REPLICA_SET = WorkloadSelectors(controllers={("ReplicaSet", "default", "rs"): label_selector(WEB)})


@pytest.mark.parametrize(
    "new_pod, selectors, expected",
    [
        pytest.param(incoming(), None, None, id="without the cluster's selectors there are no defaults"),
        pytest.param(incoming(), WorkloadSelectors(), None, id="a pod nothing selects gets no defaults"),
        pytest.param(
            incoming(labels={"app": "db"}),
            WEB_SERVICE,
            None,
            id="a Service that does not select the pod does not count",
        ),
        pytest.param(
            incoming(), WEB_SERVICE, {"matchLabels": WEB}, id="a Service selecting the pod gives its selector"
        ),
        pytest.param(
            owned(),
            WEB_REPLICA_SET,
            {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]},
            id="the owning ReplicaSet's selector is AND-ed",
        ),
        pytest.param(
            incoming(spread(ZONE, 1, "ScheduleAnyway", match=WEB)),
            WEB_SERVICE,
            None,
            id="a pod with constraints of its own keeps them",
        ),
    ],
)
def test_system_defaults(new_pod: V1Pod, selectors: WorkloadSelectors | None, expected: dict[str, Any] | None) -> None:
    defaults = system_default_constraints(new_pod, selectors)
    if expected is None:
        assert defaults == []
        return
    assert [(c.max_skew, c.key) for c in defaults] == [(3, HOSTNAME), (5, ZONE)]
    assert all(
        c.selector == label_selector(expected.get("matchLabels"), *expected.get("matchExpressions", []))
        for c in defaults
    )


def test_system_defaults_score_nodes_without_a_zone_on_their_hostname() -> None:
    """kube's requireAllTopologies is false for the defaults: a node without the zone label is still scored."""
    nodes = [*three_zones(), node_with_pods("d", pods=[web("w4", "d")])]
    plugin = PodTopologySpread()
    profile = Profile("t", (NodeResourcesFit(),), ((plugin, 1),))
    decision = schedule(profile, incoming(), nodes, explain=True, objects=ClusterObjects({}, WEB_SERVICE, {}))
    by_node = {name: scores[plugin.name] for name, scores in decision.scores.items()}
    # raw: hostname weight log(4 + 2), zone weight log(3 + 2), plus maxSkew - 1 each: a=2*1.79+2+2*1.61+4=12.8→13,
    # b=1.79+2+1.61+4=9.4→9, c=6, d=1.79+2=3.8→4; normalised (max + min - s) * 100 // max.
    assert by_node == {"a": 30, "b": 61, "c": 84, "d": 100}


def test_a_nodes_remembered_count_follows_its_pods() -> None:
    """The count of matching pods a node remembers (NodeInfo.memo) is dropped by every change of the node."""
    wanted = pod("new", labels={"app": "web"}, spread=[spread(ZONE, 1, match={"app": "web"})])
    cs = constraints(wanted, "DoNotSchedule")
    a = node_with_pods("a", labels={ZONE: "z1"}, pods=[pod("web-1", labels={"app": "web"})])
    assert domain_counts(wanted, cs, [a]) == [{"z1": 1}]
    a.add_pod(PodInfo.of(pod("web-2", labels={"app": "web"}), "a"))
    assert domain_counts(wanted, cs, [a]) == [{"z1": 2}]
    a.add_pod(PodInfo.of(pod("web-2", labels={"app": "db"}), "a"))  # relabelled: the same pod again
    assert domain_counts(wanted, cs, [a]) == [{"z1": 1}]
    a.remove_pod(PodInfo.of(pod("web-1"), "a").uid)
    assert domain_counts(wanted, cs, [a]) == [{"z1": 0}]
    other = pod("new", namespace="other", labels={"app": "web"}, spread=[spread(ZONE, 1, match={"app": "web"})])
    assert domain_counts(other, constraints(other, "DoNotSchedule"), [a]) == [{"z1": 0}]
