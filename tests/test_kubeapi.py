"""kubeapi's pure parts: which errors are worth a retry, how long a retry waits, the pending-pods selector,
how an error is described and how reports wait for their senders. What the API server answers is tested
against a real one in tests/integration/."""

from __future__ import annotations

import threading

import pytest
import urllib3
from kubernetes.client.exceptions import ApiException
from tenacity import RetryCallState, Retrying

from kubeapi import RETRY_CAP_SECONDS, Reporter, describe, is_transient, pending_selector
from kubeapi import _wait as retry_wait

ACTIVE = "status.phase!=Succeeded,status.phase!=Failed"


def api_error(status: int | None, reason: str = "", body: str | None = None, **headers: str) -> ApiException:
    error = ApiException(status=status, reason=reason)
    error.body = body
    error.headers = {k.replace("_", "-"): v for k, v in headers.items()}
    return error


@pytest.mark.parametrize(
    "error, transient",
    [
        pytest.param(api_error(500), True, id="500 is the server's problem"),
        pytest.param(api_error(503), True, id="503 during an API server restart"),
        pytest.param(api_error(429), True, id="429 too many requests"),
        pytest.param(api_error(0), True, id="status 0: a connection dropped mid-request"),
        pytest.param(api_error(None), True, id="no status at all: the request never got an answer"),
        pytest.param(api_error(404), False, id="404 is an answer: the pod is gone"),
        pytest.param(api_error(409), False, id="409 is an answer: bound by someone else"),
        pytest.param(api_error(403), False, id="403 is an answer: a permission is missing"),
        pytest.param(api_error(400), False, id="400 is our bug, retrying will not help"),
        pytest.param(urllib3.exceptions.ProtocolError("reset"), True, id="a urllib3 protocol error"),
        pytest.param(urllib3.exceptions.TimeoutError("read timed out"), True, id="a urllib3 timeout"),
        pytest.param(ConnectionRefusedError(), True, id="connection refused"),
        pytest.param(TimeoutError(), True, id="a timeout"),
        pytest.param(ValueError("bad"), False, id="any other exception is not transient"),
    ],
)
def test_is_transient(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient


def retry_state(error: BaseException, attempt: int = 1) -> RetryCallState:
    state = RetryCallState(Retrying(), fn=None, args=(), kwargs={})
    state.attempt_number = attempt
    state.set_exception((type(error), error, None))
    return state


@pytest.mark.parametrize(
    "retry_after, seconds",
    [
        pytest.param("3", 3.0, id="the server's Retry-After is obeyed"),
        pytest.param("0.5", 0.5, id="fractions too"),
        pytest.param("120", RETRY_CAP_SECONDS, id="but capped, so a retry still happens soon"),
    ],
)
def test_retry_after_sets_the_wait(retry_after: str, seconds: float) -> None:
    assert retry_wait(retry_state(api_error(429, Retry_After=retry_after))) == seconds


def test_a_late_retry_waits_its_backoff_even_when_retry_after_is_shorter() -> None:
    """Throttled callers that all obeyed `Retry-After: 1` exactly would come back together, to be throttled again."""
    waits = {retry_wait(retry_state(api_error(429, Retry_After="1"), attempt=6)) for _ in range(50)}
    assert all(3.2 <= w <= 3.4 for w in waits), waits
    assert len(waits) > 1, "no jitter"


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(api_error(503), id="without Retry-After"),
        pytest.param(api_error(503, Retry_After="Wed, 21 Oct 2026 07:28:00 GMT"), id="an HTTP date is not a number"),
        pytest.param(ConnectionResetError(), id="an exception without headers"),
    ],
)
@pytest.mark.parametrize(
    "attempt, low, high",
    [
        pytest.param(1, 0.1, 0.3, id="first retry: 0.1 s plus up to 0.2 s jitter"),
        pytest.param(4, 0.8, 1.0, id="doubling: 0.1 * 2**3"),
        pytest.param(8, RETRY_CAP_SECONDS, RETRY_CAP_SECONDS, id="capped"),
    ],
)
def test_otherwise_the_wait_is_exponential_with_jitter(
    error: BaseException, attempt: int, low: float, high: float
) -> None:
    waits = {retry_wait(retry_state(error, attempt)) for _ in range(50)}
    assert all(low <= w <= high for w in waits), waits


@pytest.mark.parametrize(
    "names, selector",
    [
        pytest.param(["my-scheduler"], f"spec.nodeName=,{ACTIVE},spec.schedulerName=my-scheduler", id="one name"),
        pytest.param(["a", "a"], f"spec.nodeName=,{ACTIVE},spec.schedulerName=a", id="one name given twice"),
        pytest.param(["b", "a"], f"spec.nodeName=,{ACTIVE}", id="several names: the caller filters"),
    ],
)
def test_pending_selector(names: list[str], selector: str) -> None:
    assert pending_selector(names) == selector


@pytest.mark.parametrize(
    "error, text",
    [
        pytest.param(
            api_error(403, "Forbidden", '{"kind": "Status", "message": "pods \\"p\\" is forbidden"}'),
            'HTTP 403 Forbidden: pods "p" is forbidden',
            id="a Status body: its message",
        ),
        pytest.param(
            api_error(502, "Bad Gateway", "<html>upstream</html>"),
            "HTTP 502 Bad Gateway: <html>upstream</html>",
            id="a body that is not JSON: as it is",
        ),
        pytest.param(
            api_error(500, "Internal Server Error", '{"kind": "Status"}'),
            'HTTP 500 Internal Server Error: {"kind": "Status"}',
            id="a Status without a message: the whole body",
        ),
        pytest.param(ConnectionResetError(104, "reset"), "ConnectionResetError(104, 'reset')", id="other errors"),
        pytest.param(None, "None", id="no error"),
    ],
)
def test_describe(error: BaseException | None, text: str) -> None:
    assert describe(error) == text


def test_the_reporter_lets_backlog_reports_wait_and_then_holds_the_caller_back() -> None:
    """At most threads + backlog reports are submitted and unposted; close posts them all."""
    gate, posted = threading.Event(), []

    def post(i: int) -> None:
        gate.wait()
        posted.append(i)

    reporter = Reporter(threads=1, backlog=2)
    for i in range(3):  # one being posted, two waiting
        reporter.submit(post, i)
    fourth = threading.Thread(target=reporter.submit, args=(posted.append, 3))
    fourth.start()
    fourth.join(timeout=0.2)
    assert fourth.is_alive(), "a fourth report waits for room"
    gate.set()
    fourth.join(timeout=5)
    reporter.close()
    assert sorted(posted) == [0, 1, 2, 3]
