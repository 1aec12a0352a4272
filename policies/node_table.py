"""The nodes' resource numbers as arrays, so that the resource filter and scores judge many nodes at once.

Each NodeInfo keeps its numbers as one row (`NodeInfo.row`, laid out as framework.ROW_RESOURCES says). The cache's
NodeTable holds the rows of all its nodes in one int64 array: a node tells its table when its row changes (a pod
added, removed, a node update), and the table copies the changed rows in before the next read. The cache's node
list is a NodeList, which knows where its nodes' rows are. `rows(nodes)` gives the rows of any nodes: from the table
for a NodeList, else read node by node (the nodes tests and preemption's dry run make) — the same numbers either
way. Nothing here does I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from policies.framework import ROW_LENGTH, CycleState, Key, NodeInfo

# Up to here int64 arithmetic on quantities (times a score of 100 and a weight) stays exact, as does their
# conversion to float64 for the fractions; beyond it (a node claiming exabytes) the arrays hold Python ints.
EXACT = 2**53

Slots = npt.NDArray[np.intp]
D = TypeVar("D", bound=Hashable)  # a tally's domain
# Sums kept at once (the oldest is dropped): one per workload's spread constraint or pod affinity terms, say.
TALLIES = 64


@dataclass(slots=True)
class _Tally:
    counts: Counter[Any] = field(default_factory=Counter)  # the sum per domain
    nodes: Counter[Any] = field(default_factory=Counter)  # contributions per domain
    of: dict[int, tuple[tuple[Any, int], ...]] = field(default_factory=dict)  # each slot's (domain, count)s
    dirty: set[int] = field(default_factory=set)  # slots changed since the sum was last brought up to date


def zeros(count: int, dtype: npt.DTypeLike = np.float64) -> npt.NDArray[Any]:
    """`np.zeros` without giving up the GIL: numpy releases it around calloc for more than 1 KiB, and getting it
    back behind 16 busy threads took ~28 µs a call (measured; more behind real bind threads)."""
    return np.full(count, 0, dtype=dtype)


def ints(values: Sequence[Any]) -> npt.NDArray[Any]:
    """Quantities as an int64 array, or as Python ints (dtype object: slower, never wrong) when one is too big."""
    try:
        array = np.array(values, dtype=np.int64)
        if not array.size or np.abs(array).max() < EXACT:
            return array
    except OverflowError:
        pass
    return np.array(values, dtype=object)


class NodeTable:
    """The rows of the cache's nodes, a slot each, and which nodes have what a policy would otherwise look for
    on every node for every pod (kube's snapshot keeps the same lists: HavePodsWithAffinityList,
    HavePodsWithRequiredAntiAffinityList). A removed node's slot is not reused, so a node list made before the
    removal never reads another node's row (80 bytes a node that left)."""

    def __init__(self) -> None:
        self.rows = np.zeros((0, ROW_LENGTH), dtype=np.int64)
        self.size = 0  # nodes in the table
        self.membership = 0  # counts the nodes added and removed: a node list knows whether it is still all of them
        self._nodes: list[NodeInfo | None] = []
        self._changed: set[int] = set()
        self._inexact: set[int] = set()  # rows too big for int64 arithmetic: their lists are read node by node
        # Slots of the nodes with pods with pod (anti-)affinity terms; with required anti-affinity; with a
        # PreferNoSchedule taint.
        self._marked: tuple[set[int], set[int], set[int]] = (set(), set(), set())
        self._tallies: dict[Hashable, _Tally] = {}

    def add(self, node: NodeInfo) -> None:
        node.table, node.slot = self, len(self._nodes)
        self._nodes.append(node)
        self.changed(node.slot)
        self.size += 1
        self.membership += 1

    def remove(self, node: NodeInfo) -> None:
        self._nodes[node.slot] = None
        for slots in (self._changed, self._inexact, *self._marked):
            slots.discard(node.slot)
        for tally in self._tallies.values():
            tally.dirty.add(node.slot)
        node.table, node.slot = None, -1
        self.size -= 1
        self.membership += 1

    def changed(self, slot: int) -> None:
        self._changed.add(slot)
        for tally in self._tallies.values():
            tally.dirty.add(slot)

    def tally(self, key: Hashable, contribution: Callable[[NodeInfo], Iterable[tuple[D, int]]]) -> Counter[D]:
        """The sum per domain of what each node contributes (`contribution`: (domain, count) pairs, maybe none)
        over the table's nodes, kept up to date: after the first call only the nodes changed since the last one
        are read again (kube counts every node for every pod, in parallel). `key` names the contribution: the
        same key, the same function of a node. A domain is present while a node contributes to it, even 0.
        The caller must not change the Counter."""
        tally = self._tallies.get(key)
        if tally is None:
            if len(self._tallies) >= TALLIES:
                del self._tallies[next(iter(self._tallies))]
            tally = self._tallies[key] = _Tally(dirty={n.slot for n in self._nodes if n is not None})
        counts, nodes = tally.counts, tally.nodes
        for slot in tally.dirty:
            for domain, count in tally.of.pop(slot, ()):
                counts[domain] -= count
                nodes[domain] -= 1
                if not nodes[domain]:
                    del counts[domain], nodes[domain]
            node = self._nodes[slot]
            if node is not None and (pairs := tuple(contribution(node))):
                tally.of[slot] = pairs
                for domain, count in pairs:
                    counts[domain] += count
                    nodes[domain] += 1
        tally.dirty.clear()
        return counts

    def current(self) -> bool:
        """Copy the changed rows in. False while some row cannot be held exactly."""
        if self._changed:
            if len(self._nodes) > len(self.rows):
                grown = np.zeros((max(64, 2 * len(self._nodes)), ROW_LENGTH), dtype=np.int64)
                grown[: len(self.rows)] = self.rows
                self.rows = grown
            for slot in self._changed:
                node = self._nodes[slot]
                if node is None:
                    continue
                marks = (
                    node.affinity_pods,
                    node.anti_affinity_pods,
                    any(t.effect == "PreferNoSchedule" for t in node.taints),
                )
                for slots, marked in zip(self._marked, marks, strict=True):
                    if marked:
                        slots.add(slot)
                    else:
                        slots.discard(slot)
                if max(map(abs, node.row)) < EXACT:
                    self.rows[slot] = node.row
                    self._inexact.discard(slot)
                else:
                    self._inexact.add(slot)
            self._changed.clear()
        return not self._inexact

    def marked(self, which: int) -> list[NodeInfo]:
        self.current()
        return [node for slot in self._marked[which] if (node := self._nodes[slot]) is not None]


class NodeList(list[NodeInfo]):
    """Nodes of a NodeTable, in order, with the slots of their rows."""

    def __init__(self, nodes: Iterable[NodeInfo], table: NodeTable, slots: Slots | None = None) -> None:
        super().__init__(nodes)
        self.table = table
        self.slots: Slots = np.array([n.slot for n in self], dtype=np.intp) if slots is None else slots
        self._all = table.membership if len(self) == table.size else None  # the membership it was all of

    @property
    def whole(self) -> bool:
        """All of the table's nodes, still."""
        return self._all == self.table.membership

    def subset(self, positions: Slots) -> NodeList:
        return NodeList([self[i] for i in positions.tolist()], self.table, self.slots[positions])

    def window(self, start: int, stop: int) -> NodeList:
        return NodeList(self[start:stop], self.table, self.slots[start:stop])


WITH_AFFINITY_PODS, WITH_ANTI_AFFINITY_PODS, PREFER_NO_SCHEDULE = range(3)


def nodes_with(which: int, nodes: Sequence[NodeInfo]) -> Sequence[NodeInfo]:
    """Those of `nodes` with pods with pod (anti-)affinity terms (WITH_AFFINITY_PODS), with pods with required
    anti-affinity (WITH_ANTI_AFFINITY_PODS), with a PreferNoSchedule taint (PREFER_NO_SCHEDULE): the table's
    lists for all its nodes, else looked for node by node. In no particular order."""
    if isinstance(nodes, NodeList) and nodes.whole:
        return nodes.table.marked(which)
    if which == WITH_AFFINITY_PODS:
        return [n for n in nodes if n.affinity_pods]
    if which == WITH_ANTI_AFFINITY_PODS:
        return [n for n in nodes if n.anti_affinity_pods]
    return [n for n in nodes if any(t.effect == "PreferNoSchedule" for t in n.taints)]


def whole_table(nodes: Sequence[NodeInfo]) -> NodeTable | None:
    """The cache's table when `nodes` are all its nodes: then its kept sums (`tally`) count over them."""
    return nodes.table if isinstance(nodes, NodeList) and nodes.whole else None


def subset(nodes: Sequence[NodeInfo], positions: Slots) -> Sequence[NodeInfo]:
    """The nodes at these positions, as a NodeList when `nodes` is one."""
    return nodes.subset(positions) if isinstance(nodes, NodeList) else [nodes[i] for i in positions.tolist()]


def window(nodes: Sequence[NodeInfo], start: int, stop: int) -> Sequence[NodeInfo]:
    """nodes[start:stop], as a NodeList when `nodes` is one."""
    return nodes.window(start, stop) if isinstance(nodes, NodeList) else nodes[start:stop]


class Rows:
    """Some nodes' rows, read a column at a time: `rows[k]` is column k (framework.ROW_RESOURCES' layout) for
    these nodes, in their order. Gathered column by column from the table: numpy keeps the GIL through a 1-D
    gather and through arithmetic over at most 500 elements, but gives it up for a 2-D gather, and in the daemon
    a thread that gives up the GIL waits behind the bind threads to get it back (~0.1 ms each time, measured
    with 16 of them)."""

    def __init__(self, source: npt.NDArray[Any], slots: Slots | None = None) -> None:
        self._source = source  # the table's rows (at `slots`), or the nodes' own rows in order
        self._slots = slots

    def __getitem__(self, column: int) -> npt.NDArray[Any]:
        values = self._source[:, column]
        return values if self._slots is None else values[self._slots]


_SCORED: Key[Rows] = Key("the scored nodes' rows")


def rows(nodes: Sequence[NodeInfo], state: CycleState | None = None) -> Rows:
    """The nodes' rows; made once per pod for the scored nodes, which both resource scores read."""

    def read() -> Rows:
        if isinstance(nodes, NodeList) and nodes.table.current():
            return Rows(nodes.table.rows, nodes.slots)
        return Rows(ints([n.row for n in nodes]).reshape(len(nodes), ROW_LENGTH))

    return state.memo(_SCORED, read) if state is not None and nodes is state.scored else read()
