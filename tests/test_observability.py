"""Health with a hand-driven clock, and the JSON log lines."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from observability import Health, JsonFormatter, setup_logging
from tests.builders import Clock


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_before_the_first_cycle_alive_but_not_ready(clock: Clock) -> None:
    health = Health(stale_after=60, clock=clock)
    clock.now += 3600  # start-up may take long (the first LISTs): not a reason to be restarted
    assert (health.alive(), health.ready()) == (True, False)


@pytest.mark.parametrize(
    "since_beat, alive",
    [
        pytest.param(0, True, id="just after a cycle"),
        pytest.param(60, True, id="exactly stale_after later"),
        pytest.param(60.001, False, id="longer than stale_after: the loop is stuck"),
    ],
)
def test_liveness_and_readiness_follow_the_last_beat(clock: Clock, since_beat: float, alive: bool) -> None:
    health = Health(stale_after=60, clock=clock)
    health.beat()
    clock.now += since_beat
    assert (health.alive(), health.ready()) == (alive, alive)


def test_a_new_beat_revives(clock: Clock) -> None:
    health = Health(stale_after=60, clock=clock)
    health.beat()
    clock.now += 120
    health.beat()
    assert health.alive() and health.ready()


def record(msg: str, *args: object, level: int = logging.INFO, **extra: object) -> logging.LogRecord:
    made = logging.getLogger("my-scheduler").makeRecord("my-scheduler", level, __file__, 1, msg, args, None)
    made.__dict__.update(extra)
    return made


def test_a_json_line_carries_the_message_and_the_known_fields() -> None:
    line = JsonFormatter().format(
        record("Bound %s -> %s", "ns/p", "n1", pod="ns/p", node="n1", result="bound", other="left out")
    )
    entry = json.loads(line)
    assert entry.pop("ts")
    assert entry == {"level": "INFO", "msg": "Bound ns/p -> n1", "pod": "ns/p", "node": "n1", "result": "bound"}


def test_a_traceback_goes_to_its_own_field() -> None:
    try:
        raise KeyError("b")
    except KeyError:
        failed = record("ns/p: scheduling failed", level=logging.ERROR, attempt=2)
        failed.exc_info = sys.exc_info()
    entry = json.loads(JsonFormatter().format(failed))
    assert entry["msg"] == "ns/p: scheduling failed"
    assert entry["attempt"] == 2
    assert entry["exc"].startswith("Traceback (most recent call last):")
    assert entry["exc"].endswith("KeyError: 'b'")
    assert "\n" not in json.dumps(entry), "one line per record"


def test_setup_logging_quiets_the_client_libraries() -> None:
    """At DEBUG the daemon's own lines, not one per HTTP request from urllib3 or the client."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        setup_logging("DEBUG", "text")
        assert logging.getLogger("kubernetes").level == logging.WARNING
        assert logging.getLogger("urllib3").level == logging.ERROR
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
