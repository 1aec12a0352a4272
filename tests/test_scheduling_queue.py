"""The scheduling queue with a hand-driven clock: order, backoff, unschedulable pods and cluster events."""

from __future__ import annotations

import pytest

from scheduling_queue import (
    BACKOFF_MAX_SECONDS,
    FLUSH_SECONDS,
    UNSCHEDULABLE_MAX_SECONDS,
    ClusterEvent,
    PendingPod,
    SchedulingQueue,
)
from tests.builders import Clock


def pending(
    name: str, *, priority: int = 0, created: str = "2026-11-26T07:00:00Z", gated: bool = False, digest: int = 0
) -> PendingPod:
    return PendingPod(name, "ns", name, priority, created, gated, b"{}", digest)


def drain(queue: SchedulingQueue) -> list[str]:
    out = []
    while (pod := queue.pop()) is not None:
        out.append(pod.name)
    return out


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def queue(clock: Clock) -> SchedulingQueue:
    return SchedulingQueue(clock)


def test_higher_priority_first_then_the_oldest_then_by_arrival(queue: SchedulingQueue) -> None:
    queue.add_or_update(pending("young", created="2026-11-26T07:00:05Z"))
    queue.add_or_update(pending("old", created="2026-11-26T07:00:01Z"))
    queue.add_or_update(pending("urgent", priority=1000, created="2026-11-26T07:00:09Z"))
    assert drain(queue) == ["urgent", "old", "young"]


def test_a_popped_pod_is_not_popped_twice_and_a_bound_one_leaves(queue: SchedulingQueue) -> None:
    queue.add_or_update(pending("p"))
    assert queue.pop() is not None
    queue.add_or_update(pending("p"))  # the watch reports it again while it is being tried
    assert queue.pop() is None
    assert queue.done("p") == 1
    assert "p" not in queue and len(queue) == 0


def test_failures_back_off_1_2_4_seconds_up_to_10(queue: SchedulingQueue, clock: Clock) -> None:
    queue.add_or_update(pending("p"))
    waits = []
    for _ in range(6):
        assert queue.pop() is not None
        queue.failed("p")
        wake = queue.next_wake()
        assert wake is not None
        waits.append(wake - clock.now)
        clock.now = wake - 0.01
        assert queue.pop() is None, "still backing off"
        clock.now = wake
    assert waits == [1, 2, 4, 8, BACKOFF_MAX_SECONDS, BACKOFF_MAX_SECONDS]
    assert queue.done("p") == 7


def test_an_unschedulable_pod_waits_for_a_cluster_event_not_for_its_backoff(
    queue: SchedulingQueue, clock: Clock
) -> None:
    queue.add_or_update(pending("p"))
    queue.pop()
    assert queue.unschedulable("p", "0/1 nodes are available: 1 Insufficient cpu.", wants_pod_adds=False)
    clock.now += 60
    assert queue.pop() is None
    assert queue.counts()["unschedulable"] == 1
    queue.on_cluster_event(ClusterEvent.POD_ADDED)  # a new pod elsewhere cannot free cpu
    assert queue.pop() is None
    queue.on_cluster_event(ClusterEvent.NODE_CHANGED)
    assert drain(queue) == ["p"]


def test_a_pod_moved_by_an_event_still_serves_its_backoff(queue: SchedulingQueue, clock: Clock) -> None:
    queue.add_or_update(pending("p"))
    queue.pop()
    queue.unschedulable("p", "m", wants_pod_adds=False)
    queue.on_cluster_event(ClusterEvent.POD_REMOVED)
    assert queue.counts()["backoff"] == 1 and queue.pop() is None
    clock.now += 1
    assert drain(queue) == ["p"]


def test_pod_adds_move_only_pods_that_affinity_or_spread_could_help(queue: SchedulingQueue, clock: Clock) -> None:
    for name, wants in (("affine", True), ("big", False)):
        queue.add_or_update(pending(name))
        queue.pop()
        queue.unschedulable(name, "m", wants_pod_adds=wants)
    clock.now += 1
    queue.on_cluster_event(ClusterEvent.POD_ADDED)
    assert drain(queue) == ["affine"]


def test_unschedulable_pods_are_retried_after_five_minutes_without_events(queue: SchedulingQueue, clock: Clock) -> None:
    queue.add_or_update(pending("p"))
    queue.pop()
    queue.unschedulable("p", "m", wants_pod_adds=False)
    clock.now += UNSCHEDULABLE_MAX_SECONDS - 1
    assert queue.pop() is None
    clock.now += 1 + FLUSH_SECONDS
    assert drain(queue) == ["p"]


def test_the_same_message_is_reported_once(queue: SchedulingQueue, clock: Clock) -> None:
    queue.add_or_update(pending("p"))
    reported = []
    for message in ("a", "a", "b"):
        queue.pop()
        reported.append(queue.unschedulable("p", message, wants_pod_adds=False))
        queue.on_cluster_event(ClusterEvent.NODE_CHANGED)
        clock.now += BACKOFF_MAX_SECONDS
    assert reported == [True, False, True]


def test_a_spec_change_moves_an_unschedulable_pod_but_a_status_write_does_not(
    queue: SchedulingQueue, clock: Clock
) -> None:
    queue.add_or_update(pending("p", digest=1))
    queue.pop()
    queue.unschedulable("p", "m", wants_pod_adds=False)
    clock.now += 1
    queue.add_or_update(pending("p", digest=1))  # our own PodScheduled=False write comes back through the watch
    assert queue.pop() is None
    queue.add_or_update(pending("p", digest=2))  # the user changed it
    assert drain(queue) == ["p"]


def test_gated_pods_wait_until_their_gates_are_gone(queue: SchedulingQueue) -> None:
    queue.add_or_update(pending("p", gated=True))
    assert queue.pop() is None and queue.counts()["gated"] == 1
    queue.add_or_update(pending("p"))
    assert drain(queue) == ["p"]


def test_a_poll_keeps_state_and_drops_pods_no_longer_listed(queue: SchedulingQueue, clock: Clock) -> None:
    for name in ("a", "b"):
        queue.add_or_update(pending(name))
    assert drain(queue) == ["a", "b"]
    queue.unschedulable("a", "m", wants_pod_adds=False)
    queue.failed("b")
    for name in ("a", "c"):  # b was bound or deleted meanwhile
        queue.add_or_update(pending(name))
    queue.retain({"a", "c"})
    assert "b" not in queue
    assert queue.counts() == {"active": 1, "backoff": 0, "unschedulable": 1, "gated": 0}
    assert drain(queue) == ["c"]


def test_release_puts_a_pod_back_without_a_backoff(queue: SchedulingQueue) -> None:
    queue.add_or_update(pending("p"))
    queue.pop()
    queue.release("p")
    assert drain(queue) == ["p"]
    assert queue.done("p") == 1


def test_a_pod_deleted_while_in_flight_is_forgotten(queue: SchedulingQueue) -> None:
    queue.add_or_update(pending("p"))
    queue.pop()
    queue.remove("p")
    assert not queue.unschedulable("p", "m", wants_pod_adds=False)
    queue.failed("p")
    assert len(queue) == 0 and queue.next_wake() is None
