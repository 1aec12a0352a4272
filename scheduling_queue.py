"""The scheduling queue, as kube-scheduler's: activeQ, backoffQ and the unschedulable pods. No I/O.

- activeQ: pods to try now, highest priority first, then the oldest (kube's PrioritySort).
- backoffQ: pods that failed and wait 1 s, 2 s, 4 s … up to 10 s before they are tried again.
- unschedulable: pods no node fits. They stay until a cluster event could make them fit (kube's QueueingHints,
  kept coarse: any node added or changed, any assigned pod deleted or changed; an assigned pod added only for pods
  with pod affinity or topology spread constraints, the only filters a new pod can turn), or for at most
  `UNSCHEDULABLE_MAX_SECONDS` otherwise; then they go through backoffQ if their backoff has not expired.
- gated: pods with scheduling gates, until an update removes them.

Owned by the scheduling loop's thread: not thread-safe, no lock. A test can pass its own clock.
"""

from __future__ import annotations

import enum
import heapq
import itertools
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field

BACKOFF_INITIAL_SECONDS = 1.0  # kube-scheduler's podInitialBackoffSeconds
BACKOFF_MAX_SECONDS = 10.0  # kube-scheduler's podMaxBackoffSeconds
UNSCHEDULABLE_MAX_SECONDS = 300.0  # kube's podMaxInUnschedulablePodsDuration
FLUSH_SECONDS = 30.0  # how often kube looks for pods left unschedulable too long


class Where(enum.Enum):
    ACTIVE = "active"
    BACKOFF = "backoff"
    UNSCHEDULABLE = "unschedulable"
    GATED = "gated"
    IN_FLIGHT = "in flight"  # popped and being scheduled


class ClusterEvent(enum.Enum):
    NODE_CHANGED = "node added or changed"
    POD_REMOVED = "assigned pod deleted or changed"
    POD_ADDED = "assigned pod added"
    STORAGE_CHANGED = "claim, volume, storage class or CSINode added, changed or deleted"


@dataclass(frozen=True, slots=True)
class PendingPod:
    """A pending pod as the queue keeps it: who it is, how to order it, and its manifest as compact JSON bytes
    (a decoded pod is ~10x larger; it is decoded only when its turn comes)."""

    uid: str
    namespace: str
    name: str
    priority: int
    created: str  # RFC 3339: sorts like the time it stands for
    gated: bool
    manifest: bytes
    spec_digest: int  # hash of spec and labels: a change that could make the pod fit (not a status write)
    nominated_node: str = ""  # status.nominatedNodeName: where a preemption made room for it

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(slots=True)
class _Entry:
    pod: PendingPod
    where: Where
    attempts: int = 0
    backoff_until: float = 0.0
    unschedulable_since: float = 0.0
    message: str = ""  # the last FailedScheduling message reported for it
    wants_pod_adds: bool = False  # its failure could be undone by an assigned pod being added
    seq: int = 0  # heap entries of an older position are stale when this moved on


@dataclass(slots=True)
class SchedulingQueue:
    clock: Callable[[], float]
    _entries: dict[str, _Entry] = field(default_factory=dict)
    _active: list[tuple[int, str, int, str]] = field(default_factory=list)  # (-priority, created, seq, uid)
    _backoff: list[tuple[float, int, str]] = field(default_factory=list)  # (until, seq, uid)
    _unschedulable: dict[str, _Entry] = field(default_factory=dict)  # so cluster events touch only these
    _seq: Iterator[int] = field(default_factory=itertools.count)
    _last_flush: float = 0.0

    # --- what the watch or the poll says ----------------------------------------------------------------

    def add_or_update(self, pod: PendingPod) -> None:
        """A pending pod seen (added, updated, or listed again). An update that could make it fit moves an
        unschedulable pod on; a status write by us (the PodScheduled condition) does not."""
        entry = self._entries.get(pod.uid)
        if entry is None:
            self._entries[pod.uid] = entry = _Entry(pod, Where.GATED)
            self._activate(entry)
            return
        changed = entry.pod.spec_digest != pod.spec_digest
        entry.pod = pod
        if entry.where is Where.GATED or (changed and entry.where is Where.UNSCHEDULABLE):
            self._activate(entry)

    def remove(self, uid: str) -> None:
        """Bound (by us or anyone), deleted, or finished."""
        self._entries.pop(uid, None)  # heap entries of a removed pod are skipped when they come up
        self._unschedulable.pop(uid, None)

    def retain(self, uids: Collection[str]) -> None:
        """Poll mode, after a full LIST of pending pods: the ones not listed (bound or deleted) leave."""
        for uid in [u for u, e in self._entries.items() if u not in uids and e.where is not Where.IN_FLIGHT]:
            self.remove(uid)

    def on_cluster_event(self, event: ClusterEvent) -> None:
        """A change that could make unschedulable pods fit: they move on (kube's MoveAllToActiveOrBackoffQueue)."""
        for entry in list(self._unschedulable.values()):
            if event is not ClusterEvent.POD_ADDED or entry.wants_pod_adds:
                self._activate(entry)

    # --- the loop's side --------------------------------------------------------------------------------

    def pop(self) -> PendingPod | None:
        """The next pod to try now, or None; it stays `IN_FLIGHT` until done(), unschedulable() or failed()."""
        self._flush()
        while self._active:
            _, _, seq, uid = heapq.heappop(self._active)
            entry = self._entries.get(uid)
            if entry is not None and entry.where is Where.ACTIVE and entry.seq == seq:
                entry.where = Where.IN_FLIGHT
                return entry.pod
        return None

    def done(self, uid: str) -> int:
        """The pod was bound (or handed to a bind): it leaves the queue. Returns how many attempts it took."""
        entry = self._entries.pop(uid, None)
        self._unschedulable.pop(uid, None)
        return 1 + (entry.attempts if entry else 0)

    def unschedulable(self, uid: str, message: str, *, wants_pod_adds: bool) -> bool:
        """No node fits. Returns True when `message` differs from the last one reported (report it again)."""
        entry = self._entries.get(uid)
        if entry is None:  # deleted while it was being tried
            return False
        self._back_off(entry)
        entry.where, entry.unschedulable_since, entry.wants_pod_adds = Where.UNSCHEDULABLE, self.clock(), wants_pod_adds
        self._unschedulable[uid] = entry
        new = message != entry.message
        entry.message = message
        return new

    def release(self, uid: str) -> None:
        """Not tried after all (the loop stopped, or lost the lease): back as it was, with no backoff added."""
        entry = self._entries.get(uid)
        if entry is not None and entry.where is Where.IN_FLIGHT:
            self._activate(entry)

    def failed(self, uid: str) -> None:
        """An error (a bind that failed, a plugin that raised): try again after a backoff."""
        entry = self._entries.get(uid)
        if entry is not None:
            self._back_off(entry)
            entry.where = Where.BACKOFF
            entry.seq = next(self._seq)
            heapq.heappush(self._backoff, (entry.backoff_until, entry.seq, uid))

    def next_wake(self) -> float | None:
        """When the earliest backoff ends (for the loop's sleep)."""
        self._flush()
        while self._backoff:
            until, seq, uid = self._backoff[0]
            entry = self._entries.get(uid)
            if entry is not None and entry.where is Where.BACKOFF and entry.seq == seq:
                return until
            heapq.heappop(self._backoff)  # stale: the pod moved on or left
        return None

    def counts(self) -> dict[str, int]:
        """Pods per queue, named as kube's scheduler_pending_pods{queue} (in-flight pods count as active)."""
        counts = dict.fromkeys(("active", "backoff", "unschedulable", "gated"), 0)
        for entry in self._entries.values():
            counts["active" if entry.where is Where.IN_FLIGHT else entry.where.value] += 1
        return counts

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, uid: str) -> bool:
        return uid in self._entries

    # --- moves ------------------------------------------------------------------------------------------

    def _back_off(self, entry: _Entry) -> None:
        entry.attempts += 1
        delay = min(BACKOFF_INITIAL_SECONDS * 2 ** (entry.attempts - 1), BACKOFF_MAX_SECONDS)
        entry.backoff_until = self.clock() + delay

    def _activate(self, entry: _Entry) -> None:
        """To activeQ, or to backoffQ while its backoff lasts; a gated pod stays gated."""
        self._unschedulable.pop(entry.pod.uid, None)
        entry.seq = next(self._seq)
        if entry.pod.gated:
            entry.where = Where.GATED
        elif entry.backoff_until > self.clock():
            entry.where = Where.BACKOFF
            heapq.heappush(self._backoff, (entry.backoff_until, entry.seq, entry.pod.uid))
        else:
            entry.where = Where.ACTIVE
            heapq.heappush(self._active, (-entry.pod.priority, entry.pod.created, entry.seq, entry.pod.uid))

    def _flush(self) -> None:
        """Backoffs that ended go active; pods unschedulable for too long go on (kube's periodic flushes)."""
        now = self.clock()
        while self._backoff and self._backoff[0][0] <= now:
            _, seq, uid = heapq.heappop(self._backoff)
            entry = self._entries.get(uid)
            if entry is not None and entry.where is Where.BACKOFF and entry.seq == seq:
                self._activate(entry)
        if now - self._last_flush < FLUSH_SECONDS:
            return
        self._last_flush = now
        for entry in list(self._unschedulable.values()):
            if now - entry.unschedulable_since >= UNSCHEDULABLE_MAX_SECONDS:
                self._activate(entry)
