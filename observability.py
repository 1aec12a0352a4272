"""Logging, metrics (kube-scheduler's names where they apply) and the /healthz, /readyz, /metrics endpoints."""

from __future__ import annotations

import atexit
import json
import logging
import logging.handlers
import queue
import sys
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

SCHEDULE_ATTEMPTS = Counter(
    "scheduler_schedule_attempts",
    "Number of attempts to schedule pods, by the result: 'unschedulable' means a pod could not be scheduled, "
    "while 'error' means an internal scheduler problem.",
    ["result", "profile"],
)
ATTEMPT_DURATION = Histogram(
    "scheduler_scheduling_attempt_duration_seconds",
    "Scheduling attempt latency in seconds (scheduling algorithm + binding).",
    ["result", "profile"],
    buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10),
)
PENDING_PODS = Gauge(
    "scheduler_pending_pods",
    "Number of pending pods, by the queue type: 'active' are due now, 'backoff' wait after a failure, "
    "'unschedulable' wait for a cluster change that could make them fit, 'gated' have scheduling gates.",
    ["queue"],
)
POD_SCHEDULING_ATTEMPTS = Histogram(
    "scheduler_pod_scheduling_attempts",
    "Number of attempts to successfully schedule a pod.",
    buckets=(1, 2, 4, 8, 16),
)
# kube's preemption metrics: every PostFilter run, and the victims of each preemption that found some.
PREEMPTION_ATTEMPTS = Counter("scheduler_preemption_attempts", "Total preemption attempts in the cluster till now")
PREEMPTION_VICTIMS = Histogram(
    "scheduler_preemption_victims",
    "Number of selected preemption victims for preemption initiated by a single pod",
    buckets=(1, 2, 4, 8, 16, 32, 64),
)
API_RETRIES = Counter("my_scheduler_api_retries", "API calls retried after a transient error.", ["call"])
CYCLE_DURATION = Histogram(
    "my_scheduler_cycle_duration_seconds",
    "Duration of one observe-decide-act cycle.",
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30),
)
IS_LEADER = Gauge("my_scheduler_leader", "1 while this replica holds the leader lease (or runs without election).")


class Health:
    """Liveness: the loop finished a cycle (or a wait) recently. Readiness: it has finished one since start."""

    def __init__(self, stale_after: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.stale_after = stale_after
        self.clock = clock
        self.last_beat: float | None = None

    def beat(self) -> None:
        self.last_beat = self.clock()

    def alive(self) -> bool:
        return self.last_beat is None or self.clock() - self.last_beat <= self.stale_after

    def ready(self) -> bool:
        return self.last_beat is not None and self.alive()


def serve(port: int, health: Health, address: str = "0.0.0.0") -> ThreadingHTTPServer:
    """Start the HTTP endpoints in a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            if path == "/metrics":
                self._reply(200, generate_latest(), CONTENT_TYPE_LATEST)
            elif path in ("/healthz", "/livez"):
                ok = health.alive()
                self._reply(200 if ok else 503, b"ok" if ok else b"scheduling loop is stuck")
            elif path == "/readyz":
                ok = health.ready()
                self._reply(200 if ok else 503, b"ok" if ok else b"no scheduling cycle finished yet")
            else:
                self._reply(404, b"not found")

        def _reply(self, code: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            """Probes every few seconds are not worth a log line."""

    server = ThreadingHTTPServer((address, port), Handler)
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server


class JsonFormatter(logging.Formatter):
    FIELDS = ("pod", "node", "reason", "attempt", "result")

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "msg": record.getMessage(),
        }
        entry.update({k: getattr(record, k) for k in self.FIELDS if hasattr(record, k)})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup_logging(level: str, fmt: str) -> None:
    """Records go through a queue to one writer thread: the bind threads each log a `Bound` line, and writing
    to stderr under the handler's lock made them wait on each other (~8 % of a burst's samples)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if fmt == "json" else logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    )
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(records, handler)
    listener.start()
    atexit.register(listener.stop)  # flushes what is queued
    logging.basicConfig(level=level, handlers=[_Enqueue(records)], force=True)
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.ERROR)


class _Enqueue(logging.handlers.QueueHandler):
    """Hands the record over as it is: the writer thread formats it (the stock QueueHandler formats it here,
    merging a traceback into the message, which would take it out of the JSON lines' `exc` field)."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        return record
