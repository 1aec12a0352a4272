"""InterPodAffinity: required pod affinity, required anti-affinity, and existing pods' anti-affinity."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest
from kubernetes.client import V1Pod

from policies.framework import ClusterObjects, Code, CycleState, NodeFacts, NodeInfo, PodInfo, WorkloadSelectors
from policies.inter_pod_affinity import (
    AFFINITY_MISMATCH,
    ANTI_AFFINITY_MISMATCH,
    EXISTING_ANTI_AFFINITY_MISMATCH,
    InterPodAffinity,
)
from policies.node_table import NodeList
from tests.builders import ZONE, filter_reasons, held, node, node_with_pods, pod, pod_term, selector

WEB, DB = {"app": "web"}, {"app": "db"}
ANTI, AFF, EXISTING = ANTI_AFFINITY_MISMATCH, AFFINITY_MISMATCH, EXISTING_ANTI_AFFINITY_MISMATCH


def on(node_name: str, name: str = "old", labels: dict[str, str] | None = None, **kwargs: Any) -> V1Pod:
    return pod(name, labels=WEB if labels is None else labels, node_name=node_name, **kwargs)


def new(**kwargs: Any) -> V1Pod:
    return pod("new", labels=kwargs.pop("labels", WEB), **kwargs)


Nodes = Callable[[list[NodeInfo]], Sequence[NodeInfo]]


@pytest.fixture(params=[list, held], ids=["node by node", "the cache's sums"])
def as_held(request: pytest.FixtureRequest) -> Nodes:
    return request.param  # type: ignore[no-any-return]


def passing(new_pod: V1Pod, nodes: Sequence[NodeInfo]) -> list[bool]:
    """The daemon's verdicts, all nodes at once (filter_all)."""
    return InterPodAffinity().filter_all(new_pod, nodes, CycleState(nodes)).tolist()  # type: ignore[no-any-return]


def zones(a: list[V1Pod] | None = None, b: list[V1Pod] | None = None, c: list[V1Pod] | None = None) -> list[NodeInfo]:
    """a and b in zone z1, c in z2."""
    return [
        node_with_pods("a", labels={ZONE: "z1"}, pods=a or []),
        node_with_pods("b", labels={ZONE: "z1"}, pods=b or []),
        node_with_pods("c", labels={ZONE: "z2"}, pods=c or []),
    ]


@pytest.mark.parametrize(
    "new_pod, nodes, expected",
    [
        pytest.param(
            new(anti_affinity=[pod_term(match=WEB)]),
            zones(a=[on("a")]),
            {"a": ANTI, "b": None, "c": None},
            id="hostname anti-affinity rejects only the node running a matching pod",
        ),
        pytest.param(
            new(anti_affinity=[pod_term(ZONE, match=WEB)]),
            zones(a=[on("a")]),
            {"a": ANTI, "b": ANTI, "c": None},
            id="zone anti-affinity rejects every node of the zone",
        ),
        pytest.param(
            new(anti_affinity=[pod_term(match=WEB)]),
            zones(a=[on("a", labels=DB)]),
            {"a": None, "b": None, "c": None},
            id="pods outside the selector do not repel",
        ),
        pytest.param(
            new(anti_affinity=[pod_term(match=WEB)]),
            zones(a=[on("a", namespace="prod")]),
            {"a": None, "b": None, "c": None},
            id="by default only pods of the pod's own namespace count",
        ),
        pytest.param(
            new(anti_affinity=[pod_term(match=WEB, namespaces=["prod"])]),
            zones(a=[on("a", namespace="prod")], b=[on("b")]),
            {"a": ANTI, "b": None, "c": None},
            id="listed namespaces replace the pod's own",
        ),
        pytest.param(
            new(anti_affinity=[pod_term(match=WEB, namespaceSelector={})]),
            zones(a=[on("a", namespace="prod")], b=[on("b")]),
            {"a": ANTI, "b": ANTI, "c": None},
            id="an empty namespaceSelector means every namespace",
        ),
        pytest.param(
            new(
                anti_affinity=[pod_term(match=WEB, namespaceSelector=selector({"kubernetes.io/metadata.name": "prod"}))]
            ),
            zones(a=[on("a", namespace="prod")], b=[on("b", namespace="test")]),
            {"a": ANTI, "b": None, "c": None},
            id="a namespaceSelector sees the namespace's name label",
        ),
        pytest.param(
            new(anti_affinity=[pod_term("rack", match=WEB)]),
            zones(a=[on("a")]),
            {"a": None, "b": None, "c": None},
            id="anti-affinity over a key no node carries rejects nothing",
        ),
        pytest.param(
            new(anti_affinity=[pod_term()]),
            zones(a=[on("a")]),
            {"a": None, "b": None, "c": None},
            id="a term without labelSelector matches no pod",
        ),
        pytest.param(
            new(anti_affinity=[pod_term(match={})]),
            zones(a=[on("a", labels={})]),
            {"a": ANTI, "b": None, "c": None},
            id="a term with an empty labelSelector matches every pod",
        ),
        pytest.param(
            new(),
            zones(a=[on("a", anti_affinity=[pod_term(match=WEB)])]),
            {"a": EXISTING, "b": None, "c": None},
            id="an existing pod's hostname anti-affinity keeps matching pods off its node",
        ),
        pytest.param(
            new(),
            zones(b=[on("b", labels=DB, anti_affinity=[pod_term(ZONE, match=WEB)])]),
            {"a": EXISTING, "b": EXISTING, "c": None},
            id="an existing pod's zone anti-affinity keeps matching pods out of its zone",
        ),
        pytest.param(
            new(labels=DB),
            zones(a=[on("a", anti_affinity=[pod_term(match=WEB)])]),
            {"a": None, "b": None, "c": None},
            id="an existing pod's anti-affinity ignores pods it does not select",
        ),
        pytest.param(
            new(),
            zones(a=[on("a", namespace="prod", anti_affinity=[pod_term(match=WEB)])]),
            {"a": None, "b": None, "c": None},
            id="an existing pod's anti-affinity defaults to its own namespace",
        ),
        pytest.param(
            new(affinity=[pod_term(ZONE, match=DB)]),
            zones(a=[on("a", labels=DB)]),
            {"a": None, "b": None, "c": AFF},
            id="zone affinity admits every node of a zone running a matching pod",
        ),
        pytest.param(
            new(affinity=[pod_term(match=DB)]),
            zones(a=[on("a", labels=DB)]),
            {"a": None, "b": AFF, "c": AFF},
            id="hostname affinity admits only the node running a matching pod",
        ),
        pytest.param(
            new(affinity=[pod_term(ZONE, match=DB)]),
            zones(),
            {"a": AFF, "b": AFF, "c": AFF},
            id="affinity to pods that run nowhere rejects every node",
        ),
        pytest.param(
            new(affinity=[pod_term(ZONE, match=WEB)]),
            [*zones(), node_with_pods("d")],
            {"a": None, "b": None, "c": None, "d": AFF},
            id="the first pod of a self-affine group may go to any node with the key",
        ),
        pytest.param(
            new(affinity=[pod_term(ZONE, match=WEB)]),
            zones(c=[on("c")]),
            {"a": AFF, "b": AFF, "c": None},
            id="once a group member runs, the others must join its zone",
        ),
        pytest.param(
            new(affinity=[pod_term(ZONE, match=DB), pod_term(ZONE, match={"tier": "cache"})]),
            zones(a=[on("a", labels=DB)], b=[on("b", name="cache", labels={"tier": "cache"})]),
            {"a": AFF, "b": AFF, "c": AFF},
            id="one pod must match all affinity terms together",
        ),
        pytest.param(
            new(affinity=[pod_term(ZONE, match=DB)], anti_affinity=[pod_term(match=WEB)]),
            zones(a=[on("a", name="db", labels=DB), on("a", name="web")], c=[on("c", name="web2")]),
            {"a": ANTI, "b": None, "c": AFF},
            id="affinity and anti-affinity combine, affinity is reported first",
        ),
        pytest.param(
            new(),
            zones(a=[on("a")]),
            {"a": None, "b": None, "c": None},
            id="pods without any (anti-)affinity in play fit everywhere",
        ),
    ],
)
def test_filter(new_pod: V1Pod, nodes: list[NodeInfo], expected: dict[str, str | None], as_held: Nodes) -> None:
    held_nodes = as_held(nodes)
    assert filter_reasons(InterPodAffinity(), new_pod, held_nodes) == expected
    assert passing(new_pod, held_nodes) == [expected[n.name] is None for n in held_nodes]
    # kube's codes (interpodaffinity/filtering.go): evicting pods cannot bring a wanted pod, but it can remove an
    # unwanted one, so only the affinity case is unresolvable.
    codes = {None: Code.SUCCESS, AFF: Code.UNRESOLVABLE, ANTI: Code.UNSCHEDULABLE, EXISTING: Code.UNSCHEDULABLE}
    state = CycleState(held_nodes)
    assert {n.name: InterPodAffinity().filter(new_pod, n, state).code for n in held_nodes} == {
        name: codes[reason] for name, reason in expected.items()
    }


def test_only_pods_with_required_anti_affinity_are_tracked_per_node() -> None:
    repelling = on("a", name="r", anti_affinity=[pod_term(match=WEB)])
    preferring = on("a", name="p")
    info = node_with_pods("a", pods=[repelling, preferring])
    assert [p.name for p in info.anti_affinity_pods.values()] == ["r"]


# --- the score: preferred terms, both ways ---------------------------------------------------------------


def affinity_scores(
    new_pod: V1Pod, nodes: Sequence[NodeInfo], namespaces: dict[str, dict[str, str]] | None = None
) -> dict[str, float]:
    objects = ClusterObjects(namespaces, WorkloadSelectors(), {}) if namespaces is not None else None
    cycle = CycleState(nodes, objects)
    plugin = InterPodAffinity()
    uniform = plugin.uniform_score(new_pod, cycle)
    return {n.name: uniform if uniform is not None else plugin.score(new_pod, n, cycle) for n in nodes}


@pytest.mark.parametrize(
    "new_pod, nodes, expected",
    [
        pytest.param(new(), zones(a=[on("a")]), {"a": 0, "b": 0, "c": 0}, id="no terms anywhere: 0 everywhere"),
        pytest.param(
            new(preferred_affinity=[(10, pod_term(match=WEB))]),
            zones(a=[on("a")]),
            {"a": 100, "b": 0, "c": 0},
            id="preferred hostname affinity draws to the node running a matching pod",
        ),
        pytest.param(
            new(preferred_affinity=[(10, pod_term(ZONE, match=WEB))]),
            zones(a=[on("a")]),
            {"a": 100, "b": 100, "c": 0},
            id="preferred zone affinity draws to every node of the zone",
        ),
        pytest.param(
            new(preferred_anti_affinity=[(10, pod_term(match=WEB))]),
            zones(a=[on("a")]),
            {"a": 0, "b": 100, "c": 100},
            id="preferred anti-affinity pushes away from the node running a matching pod",
        ),
        pytest.param(
            new(preferred_affinity=[(10, pod_term(match=WEB))], preferred_anti_affinity=[(5, pod_term(match=DB))]),
            zones(a=[on("a")], b=[on("b", labels=DB)]),
            {"a": 100, "b": 0, "c": 33},
            id="weights add up, then min-max normalisation truncates: c is (0 + 5) / 15",
        ),
        pytest.param(
            new(labels=DB),
            zones(a=[on("a", preferred_anti_affinity=[(7, pod_term(match=DB))])]),
            {"a": 0, "b": 100, "c": 100},
            id="an existing pod's preferred anti-affinity toward the new pod pushes it away",
        ),
        pytest.param(
            new(labels=DB),
            zones(a=[on("a", preferred_affinity=[(7, pod_term(ZONE, match=DB))])]),
            {"a": 100, "b": 100, "c": 0},
            id="an existing pod's preferred affinity toward the new pod draws it to that pod's zone",
        ),
        pytest.param(
            new(labels=DB),
            zones(
                a=[on("a", affinity=[pod_term(match=DB)])], b=[on("b", preferred_affinity=[(1, pod_term(match=WEB))])]
            ),
            {"a": 100, "b": 0, "c": 0},
            id="an existing pod's required affinity toward the new pod counts with the hard weight 1",
        ),
        pytest.param(
            new(preferred_affinity=[(10, pod_term(match=WEB, namespaceSelector=selector({"team": "a"})))]),
            zones(a=[on("a", namespace="prod")], b=[on("b", namespace="dev")]),
            {"a": 100, "b": 0, "c": 0},
            id="a namespaceSelector matches the namespaces' own labels",
        ),
    ],
)
def test_score(new_pod: V1Pod, nodes: list[NodeInfo], expected: dict[str, float], as_held: Nodes) -> None:
    namespaces = {"prod": {"team": "a"}, "dev": {"team": "b"}, "default": {}}
    assert affinity_scores(new_pod, as_held(nodes), namespaces) == expected


def test_without_namespace_labels_a_selector_sees_only_the_name_label() -> None:
    by_name = pod_term(match=WEB, namespaceSelector=selector({"kubernetes.io/metadata.name": "prod"}))
    by_team = pod_term(match=WEB, namespaceSelector=selector({"team": "a"}))
    nodes = zones(a=[on("a", namespace="prod")])
    assert affinity_scores(new(preferred_affinity=[(1, by_name)]), nodes) == {"a": 100, "b": 0, "c": 0}
    assert affinity_scores(new(preferred_affinity=[(1, by_team)]), nodes) == {"a": 0, "b": 0, "c": 0}


def test_the_sums_the_cache_keeps_follow_every_change_of_its_nodes() -> None:
    """Over all the cache's nodes the counts come from its table, updated node by node: after each change the
    filter and the score are what counting every node again gives."""
    nodes = zones(
        a=[on("a", name="r", anti_affinity=[pod_term(match=WEB)])],
        b=[on("b", name="t", preferred_affinity=[(7, pod_term(ZONE, match=WEB))], affinity=[pod_term(match=DB)])],
    )
    table = held(nodes).table
    incoming = [
        new(anti_affinity=[pod_term(ZONE, match=WEB)]),
        new(affinity=[pod_term(ZONE, match=WEB), pod_term(match=WEB)]),
        new(preferred_affinity=[(5, pod_term(ZONE, match=DB))], preferred_anti_affinity=[(3, pod_term(match=WEB))]),
        new(labels=DB),
    ]

    def check() -> None:
        kept = [n for n in nodes if n.table is table]
        for p in incoming:
            reasons = filter_reasons(InterPodAffinity(), p, kept)
            assert filter_reasons(InterPodAffinity(), p, NodeList(kept, table)) == reasons
            assert passing(p, NodeList(kept, table)) == [r is None for r in reasons.values()]
            assert affinity_scores(p, NodeList(kept, table)) == affinity_scores(p, kept)

    check()
    nodes[2].add_pod(PodInfo.of(on("c", name="r2", anti_affinity=[pod_term(ZONE, match=DB)]), "c"))  # terms arrive
    check()
    nodes[2].add_pod(PodInfo.of(on("c", name="d", labels=DB), "c"))  # a pod terms match
    check()
    nodes[0].remove_pod(PodInfo.of(on("a", name="r"), "a").uid)  # the repelling pod leaves
    check()
    nodes[1].set_facts(NodeFacts.of(node("b", labels={ZONE: "z2"})))  # b moves to c's zone
    check()
    table.remove(nodes[2])  # c leaves
    check()
    d = node_with_pods("d", labels={ZONE: "z3"}, pods=[on("d", name="r3", anti_affinity=[pod_term(match=WEB)])])
    table.add(d)
    nodes.append(d)
    check()
