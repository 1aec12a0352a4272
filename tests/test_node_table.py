"""The cache's NodeTable: the rows it serves follow every change of its nodes, a list of some of its nodes or of
nodes it does not hold reads the nodes themselves, and quantities beyond int64 arithmetic stay exact."""

from __future__ import annotations

import numpy as np

from policies.framework import ALLOCATABLE, NONZERO, REQUESTED, ROW_LENGTH, NodeFacts, NodeInfo, PodInfo
from policies.node_table import (
    PREFER_NO_SCHEDULE,
    WITH_AFFINITY_PODS,
    WITH_ANTI_AFFINITY_PODS,
    NodeList,
    NodeTable,
    Rows,
    nodes_with,
    rows,
)
from tests.builders import held, node, node_info, pod, pod_term, taint

Mi = 1024 * 1024


def table_of(*nodes: NodeInfo) -> tuple[NodeTable, NodeList]:
    listed = held(nodes)
    return listed.table, listed


def columns(table: Rows) -> list[list[int]]:
    return [table[k].tolist() for k in range(ROW_LENGTH)]


def test_the_rows_follow_every_change_of_the_nodes() -> None:
    a, b = node_info(node("a", cpu="4", memory="8Gi")), node_info(node("b", cpu="2", memory="4Gi"))
    _, listed = table_of(a, b)
    assert rows(listed)[ALLOCATABLE].tolist() == [4000, 2000]
    a.add_pod(PodInfo.of(pod("p", cpu="500m", memory="1Gi"), "a"))
    b.add_pod(PodInfo.of(pod("q"), "b"))  # no requests: only the scoring defaults count
    table = rows(listed)
    assert table[REQUESTED].tolist() == [500, 0]
    assert table[REQUESTED + 2].tolist() == [1, 1]  # pods
    assert table[NONZERO].tolist() == [500, 100]
    assert table[NONZERO + 1].tolist() == [1024 * Mi, 200 * Mi]
    a.remove_pod(PodInfo.of(pod("p"), "a").uid)
    a.set_facts(NodeFacts.of(node("a", cpu="8")))
    assert rows(listed)[ALLOCATABLE][0] == 8000 and rows(listed)[REQUESTED][0] == 0
    assert columns(rows(listed)) == columns(rows(list(listed)))  # the same as reading the nodes


def test_a_removed_node_leaves_the_table_and_its_slot_is_not_reused() -> None:
    a, b = node_info(node("a", cpu="4")), node_info(node("b", cpu="2"))
    table, before = table_of(a, b)
    table.remove(a)
    a.add_pod(PodInfo.of(pod("p", cpu="1"), "a"))  # no longer the table's business
    c = node_info(node("c", cpu="1"))
    table.add(c)
    assert (a.table, table.size, c.slot) == (None, 2, 2)
    assert rows(before)[ALLOCATABLE][1] == 2000
    assert rows(NodeList([b, c], table))[ALLOCATABLE].tolist() == [2000, 1000]


def test_a_clone_is_not_in_the_table() -> None:
    a = node_info(node("a"))
    _, listed = table_of(a)
    clone = a.clone()
    clone.add_pod(PodInfo.of(pod("p", cpu="1"), "a"))
    assert clone.table is None and rows(listed)[REQUESTED][0] == 0


def test_quantities_too_big_for_int64_arithmetic_are_read_as_python_ints() -> None:
    huge = node_info(node("huge", cpu=str(10**18)))
    _, listed = table_of(huge, node_info(node("small")))
    table = rows(listed)
    assert table[ALLOCATABLE].dtype == object and table[ALLOCATABLE][0] == 10**21


def test_the_marked_nodes_follow_their_pods_and_taints() -> None:
    term = pod_term(match={"app": "db"})
    plain, soft = node_info(node("plain")), node_info(node("soft", taints=[taint("k", "PreferNoSchedule")]))
    _, listed = table_of(plain, soft)
    assert [n.name for n in nodes_with(PREFER_NO_SCHEDULE, listed)] == ["soft"]
    assert not nodes_with(WITH_AFFINITY_PODS, listed) and not nodes_with(WITH_ANTI_AFFINITY_PODS, listed)
    plain.add_pod(PodInfo.of(pod("anti", anti_affinity=[term]), "plain"))
    soft.add_pod(PodInfo.of(pod("near", affinity=[term]), "soft"))
    assert [n.name for n in nodes_with(WITH_ANTI_AFFINITY_PODS, listed)] == ["plain"]
    assert sorted(n.name for n in nodes_with(WITH_AFFINITY_PODS, listed)) == ["plain", "soft"]
    plain.remove_pod(PodInfo.of(pod("anti"), "plain").uid)
    soft.set_facts(NodeFacts.of(node("soft")))
    assert not nodes_with(WITH_ANTI_AFFINITY_PODS, listed) and not nodes_with(PREFER_NO_SCHEDULE, listed)
    # Some of the table's nodes: looked for among those only.
    assert [n.name for n in nodes_with(WITH_AFFINITY_PODS, listed.subset(np.array([0])))] == []


def test_a_list_made_before_the_nodes_changed_is_no_longer_all_of_them() -> None:
    soft = node_info(node("soft", taints=[taint("k", "PreferNoSchedule")]))
    table, listed = table_of(node_info(node("a")), soft)
    table.remove(soft)
    table.add(node_info(node("b")))
    assert len(listed) == table.size and not listed.whole
    assert [n.name for n in nodes_with(PREFER_NO_SCHEDULE, listed)] == ["soft"]  # looked for in the list itself
