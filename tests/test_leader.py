"""The lease arithmetic of LeaseElector with a hand-driven clock: when a renewal stops counting, and what the
Lease it writes says. Acquiring, renewing and releasing against a real API server: tests/integration/."""

from __future__ import annotations

import datetime
import logging

import pytest
from kubernetes.client import ApiClient

from leader import LeaseElector
from tests.builders import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


def elector(clock: Clock, *, lease_duration: float = 15, renew_deadline: float = 10) -> LeaseElector:
    # An ApiClient that is never called: these tests only use the elector's own arithmetic.
    return LeaseElector(
        ApiClient(),
        "kube-system",
        "my-scheduler",
        "me",
        clock=clock,
        lease_duration=lease_duration,
        renew_deadline=renew_deadline,
    )


def test_no_leader_before_a_renewal(clock: Clock) -> None:
    assert not elector(clock).is_leader()


@pytest.mark.parametrize(
    "since_renewal, leading",
    [
        pytest.param(0, True, id="just renewed"),
        pytest.param(9.999, True, id="within renew_deadline"),
        pytest.param(10, False, id="at renew_deadline: stop acting before the lease (15 s) can pass to another"),
    ],
)
def test_leadership_lapses_renew_deadline_after_the_last_renewal(
    clock: Clock, since_renewal: float, leading: bool
) -> None:
    e = elector(clock, lease_duration=15, renew_deadline=10)
    e._renewed(clock())
    clock.now += since_renewal
    assert e.is_leader() is leading


def test_a_renewal_counts_from_when_it_started(clock: Clock) -> None:
    """A slow round trip eats into the deadline: the renewal is dated from before the read, as in client-go."""
    e = elector(clock, renew_deadline=10)
    started = clock()
    clock.now += 4  # the API server was slow
    e._renewed(started)
    clock.now += 6
    assert not e.is_leader()


def test_release_without_leadership_calls_nothing(clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    e = elector(clock)
    with caplog.at_level(logging.DEBUG, logger="my-scheduler"):
        e.release()  # a call on the unconfigured client would fail and log "releasing lease … failed"
    assert caplog.records == []
    assert not e.is_leader()


def test_the_lease_spec_names_this_replica_with_whole_seconds() -> None:
    now = datetime.datetime(2026, 11, 26, 8, 0, tzinfo=datetime.UTC)
    e = LeaseElector(ApiClient(), "kube-system", "my-scheduler", "me", lease_duration=15.4)
    spec = e._spec(now, 3, now - datetime.timedelta(minutes=5))
    assert (spec.holder_identity, spec.lease_duration_seconds, spec.lease_transitions) == ("me", 15, 3)
    assert (spec.renew_time, spec.acquire_time) == (now, now - datetime.timedelta(minutes=5))
