"""Reliability, HA and observability, proven on the real control plane.

Fault tests (the API server or etcd stopped or killed and restarted, a throttled API server) each start a
private control plane, never the shared session one. Every pod must end bound exactly once, counted three ways:
spec.nodeName, one `Scheduled` event per pod, and one `Bound ns/pod -> node` line per pod over every replica's log.

The figures (take-over, recovery, retries) are printed (`pytest -s`) and appended to FIGURES as JSON lines.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from local_cluster import CLUSTER, start_cluster, stop_cluster
from prometheus_client.parser import text_string_to_metric_families

import connections
import kubeapi
from tests.integration.conftest import (
    ROOT,
    Cluster,
    Env,
    Scheduler,
    body,
    core_api,
    in_background,
    namespace_env,
    service_account_token,
    unique,
    wait_for,
)

FIGURES = Path("/tmp/my-scheduler-reliability.jsonl")
FAST = ("--interval", "0.2")
BURST = 1000  # the fault tests' burst
LEADER_BURST = 500  # leader election and races: enough to be mid-burst, cheaper on a shared 2-core machine
RACE_BURST = 300
NODES = 20
PARALLELISM = 16  # scheduler.py's default --parallelism: binds in flight at once
SHORT_LEASE = {"duration": 4.0, "renew": 3.0, "retry": 0.5}
DEFAULT_LEASE = {"duration": 15.0, "renew": 10.0, "retry": 2.0}  # kube-scheduler's

LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (\w+) (.*)$")
BOUND = re.compile(r"^Bound (\S+/\S+) -> (\S+)$")
RETRY = re.compile(r"^(\w+) failed \(attempt (\d+)/\d+\), retrying: (.*)$")  # kubeapi._retrying


# --- figures and logs ----------------------------------------------------------------------------------------


def record(name: str, **figures: Any) -> None:
    """For the closing note: visible with `pytest -s`, and kept in FIGURES."""
    print(f"\n[reliability] {name}: {json.dumps(figures)}")
    with FIGURES.open("a") as f:
        f.write(json.dumps({"test": name, "at": datetime.datetime.now().isoformat(), **figures}) + "\n")


def entries(text: str) -> Iterator[tuple[float, str, str]]:
    """(wall-clock time, level, message) of each text-format log line; traceback lines are skipped."""
    for line in text.splitlines():
        match = LOG_LINE.match(line)
        if match:
            stamp = datetime.datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            yield stamp, match[2], match[3]


def bound_lines(*texts: str) -> Counter[str]:
    """`ns/pod` → how many `Bound ns/pod -> node` lines name it, over all the given logs."""
    return Counter(m[1] for text in texts for _, _, msg in entries(text) if (m := BOUND.match(msg)))


def bound_times(text: str) -> list[float]:
    return [stamp for stamp, _, msg in entries(text) if BOUND.match(msg)]


def first_time(text: str, words: str) -> float:
    return min(stamp for stamp, _, msg in entries(text) if words in msg)


def retries(text: str) -> list[str]:
    return [msg for _, _, msg in entries(text) if RETRY.match(msg)]


def count_bound(log: Path) -> int:
    return log.read_text().count(" Bound ")


def quiet(text: str) -> list[str]:
    """Lines that must not appear when nothing went wrong: errors and tracebacks."""
    return [line for line in text.splitlines() if " ERROR " in line or "Traceback" in line]


# --- pods, bindings and events ------------------------------------------------------------------------------


def add_nodes(env: Env, count: int = NODES) -> list[str]:
    return [env.node(f"n{i:02}", cpu="32", memory="128Gi", pods="200") for i in range(count)]


def create_pods(env: Env, count: int, prefix: str = "p", labels: dict[str, str] | None = None) -> list[str]:
    """`count` small pods for env's scheduler, created 16 at a time."""
    names = [f"{prefix}{i:04}" for i in range(count)]

    def create(name: str) -> None:
        manifest = {
            "metadata": {"name": name, "labels": labels or {}},
            "spec": {
                "schedulerName": env.scheduler_name,
                "containers": [{"name": "c", "image": "pause", "resources": {"requests": {"cpu": "10m"}}}],
            },
        }
        env.core.create_namespaced_pod(env.namespace, body(manifest), _preload_content=False)

    with ThreadPoolExecutor(16) as pool:
        list(pool.map(create, names))
    return names


def raw_list(env: Env, method: Any) -> list[dict[str, Any]]:
    response: Any = method(env.namespace, _preload_content=False, _request_timeout=30)
    items: list[dict[str, Any]] = json.loads(response.data)["items"]
    return items


def all_bound(env: Env, count: int) -> bool:
    try:
        pods = raw_list(env, env.core.list_namespaced_pod)
    except (client.ApiException, OSError, ValueError):  # the control plane may still be coming back
        return False
    return sum(1 for p in pods if p["spec"].get("nodeName")) >= count


@dataclass
class Accounting:
    """Where each pod ended, and who said so: the API server, the events, the logs."""

    names: list[str]
    placements: dict[str, str | None]  # pod → spec.nodeName
    events: Counter[str]  # pod → Scheduled events
    lines: Counter[str]  # pod → Bound lines over all logs
    logged_nodes: dict[str, str]  # pod → node its Bound line names
    stale_unschedulable: list[str]  # bound pods whose PodScheduled condition says False
    bound_at: dict[str, float]  # pod → when the API server set PodScheduled=True (whole seconds)

    @classmethod
    def of(cls, env: Env, names: list[str], *logs: str) -> Accounting:
        pods = raw_list(env, env.core.list_namespaced_pod)
        stale = [
            p["metadata"]["name"]
            for p in pods
            if p["spec"].get("nodeName")
            and any(c["type"] == "PodScheduled" and c["status"] == "False" for c in p["status"].get("conditions", []))
        ]
        events = Counter(
            e["involvedObject"]["name"]
            for e in raw_list(env, env.core.list_namespaced_event)
            if e.get("reason") == "Scheduled"
        )
        prefix = f"{env.namespace}/"
        logged = [m for text in logs for _, _, msg in entries(text) if (m := BOUND.match(msg))]
        bound_at = {
            p["metadata"]["name"]: datetime.datetime.fromisoformat(c["lastTransitionTime"]).timestamp()
            for p in pods
            for c in p["status"].get("conditions", [])
            if c["type"] == "PodScheduled" and c["status"] == "True"
        }
        return cls(
            names=names,
            placements={p["metadata"]["name"]: p["spec"].get("nodeName") for p in pods},
            events=events,
            lines=Counter(m[1].removeprefix(prefix) for m in logged),
            logged_nodes={m[1].removeprefix(prefix): m[2] for m in logged},
            stale_unschedulable=stale,
            bound_at=bound_at,
        )

    def unbound(self) -> list[str]:
        return [n for n in self.names if not self.placements.get(n)]

    def twice(self) -> dict[str, tuple[int, int]]:
        """Pods with more than one Scheduled event or Bound line: (events, lines)."""
        return {n: (self.events[n], self.lines[n]) for n in self.names if self.events[n] > 1 or self.lines[n] > 1}

    def without_event(self) -> list[str]:
        return [n for n in self.names if self.events[n] == 0]

    def without_line(self) -> list[str]:
        return [n for n in self.names if self.lines[n] == 0]

    def assert_exactly_once(self) -> None:
        assert self.unbound() == []
        assert self.twice() == {}, "pods bound twice: (Scheduled events, Bound lines)"
        assert self.without_event() == [], "bound pods without a Scheduled event"
        assert self.without_line() == [], "bound pods without a Bound line"
        assert {n for n in self.names if self.logged_nodes[n] != self.placements[n]} == set(), "log disagrees"
        assert self.stale_unschedulable == [], "bound pods marked PodScheduled=False"


# --- API server and etcd stopped mid-burst (private control planes) ----------------------------------------


@contextmanager
def private_env(directory: Path, env: dict[str, str] | None = None) -> Iterator[Env]:
    """A control plane of one's own (fault tests kill parts of it), and a namespace and scheduler name in it."""
    kubeconfig = start_cluster(directory, env)
    try:
        cluster = Cluster(kubeconfig, directory, core_api(kubeconfig))
        namespace = unique("t")
        cluster.core.create_namespace(body({"metadata": {"name": namespace}}))
        yield Env(cluster, namespace, scheduler_name=unique("sched"), logs=directory.parent)
    finally:
        stop_cluster(directory)


def component(env: Env, action: str, name: str) -> None:
    """hack/cluster.sh stop|start etcd|kube-apiserver on env's private cluster."""
    assert env.cluster.dir is not None
    subprocess.run(["bash", str(CLUSTER), action, name, str(env.cluster.dir)], check=True, timeout=120)


def kill_mid_burst(env: Env, victim: str, tmp_path: Path, *, hard: bool = False, outage: float = 4.0) -> Accounting:
    """A BURST-pod burst; `victim` is stopped once a tenth is bound (hack/cluster.sh: SIGTERM, so the API server
    drains what it is serving) or SIGKILLed (`hard`), and started again `outage` s later. The daemon must stay
    up throughout; the figures are recorded."""
    add_nodes(env)
    names = create_pods(env, BURST)
    log = tmp_path / "scheduler.log"
    with env.scheduler(*FAST, log=log) as scheduler:
        wait_for(lambda: count_bound(log) >= BURST // 10, timeout=60, interval=0.02, what="a tenth of the burst")
        down_at = time.time()
        if hard:
            assert env.cluster.dir is not None
            os.killpg(int((env.cluster.dir / f"{victim}.pid").read_text()), signal.SIGKILL)
        component(env, "stop", victim)
        stopped_at = time.time()
        time.sleep(outage)
        assert scheduler.process.poll() is None, "the daemon died while the control plane was down"
        restart_at = time.time()
        component(env, "start", victim)  # returns once the API server's /readyz is ok, or once etcd is spawned
        ready_at = time.time()
        wait_for(lambda: all_bound(env, BURST), timeout=120, interval=0.2, what=f"{BURST} pods bound")
        assert scheduler.process.poll() is None, "the daemon died after the control plane came back"
    assert scheduler.exit_code == 0
    text = log.read_text()
    # The API server serves (and the daemon binds) before its /readyz turns ok, so times count from the restart.
    after = [t for t in bound_times(text) if t > restart_at]
    accounting = Accounting.of(env, names, text)
    record(
        f"{victim} {'SIGKILLed' if hard else 'stopped'} mid-burst",
        pods=BURST,
        nodes=NODES,
        outage_seconds=outage,
        stop_seconds=round(stopped_at - down_at, 2),
        down_seconds=round(restart_at - down_at, 2),
        restart_to_ready_seconds=round(ready_at - restart_at, 2),
        bound_after_restart=len(after),
        first_bind_after_restart_seconds=round(min(after) - restart_at, 2) if after else None,
        recovery_seconds=round(max(after) - restart_at, 2) if after else None,
        ready_to_all_bound_seconds=round(max(after) - ready_at, 2) if after else None,
        retries_logged=len(retries(text)),
        errors_logged=len(quiet(text)),
        without_bound_line=len(accounting.without_line()),
        without_scheduled_event=len(accounting.without_event()),
        stale_unschedulable=len(accounting.stale_unschedulable),
    )
    assert after, "no pod was left to bind after the restart: the stop missed the burst"
    return accounting


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_the_api_server_stopped_mid_burst_every_pod_ends_bound_exactly_once(tmp_path: Path) -> None:
    with private_env(tmp_path / "cluster") as env:
        kill_mid_burst(env, "kube-apiserver", tmp_path).assert_exactly_once()


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_etcd_stopped_mid_burst_every_pod_ends_bound_exactly_once(tmp_path: Path) -> None:
    with private_env(tmp_path / "cluster") as env:
        kill_mid_burst(env, "etcd", tmp_path).assert_exactly_once()


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_the_api_server_sigkilled_mid_burst_every_pod_ends_bound_exactly_once(tmp_path: Path) -> None:
    with private_env(tmp_path / "cluster") as env:
        accounting = kill_mid_burst(env, "kube-apiserver", tmp_path, hard=True)
    assert accounting.unbound() == []
    assert accounting.twice() == {}
    accounting.assert_exactly_once()


# --- leader election ----------------------------------------------------------------------------------------

# Runs scheduler.py with socket.gethostname() answering argv[1]: replicas on one machine otherwise share the
# lease identity `<scheduler>-<hostname>` and both lead (test_two_replicas_on_one_host_elect_one_leader).
AS_HOST = (
    "import os, runpy, socket, sys; host = sys.argv.pop(1); socket.gethostname = lambda: host; "
    "sys.argv = sys.argv[1:]; sys.path.insert(0, os.path.dirname(sys.argv[0])); "
    "runpy.run_path(sys.argv[0], run_name='__main__')"
)


def replica(env: Env, log: Path, *args: str, host: str | None = None) -> AbstractContextManager[Scheduler]:
    """Env.scheduler, optionally as another host; SIGTERM on the way out unless the test killed it already."""
    command = env.scheduler_args(*args)
    if host:
        command = [sys.executable, "-c", AS_HOST, host, *command[1:]]
    return in_background(command, log, stop_timeout=30)


def election_args(env: Env, lease: str, timings: dict[str, float]) -> tuple[str, ...]:
    return (
        "--leader-elect",
        "--leader-elect-namespace",
        env.namespace,
        "--leader-elect-name",
        lease,
        "--leader-elect-lease-duration",
        str(timings["duration"]),
        "--leader-elect-renew-deadline",
        str(timings["renew"]),
        "--leader-elect-retry-period",
        str(timings["retry"]),
        *FAST,
    )


def leads(log: Path) -> bool:
    return "acquired leadership" in log.read_text()


@dataclass
class TakeOver:
    accounting: Accounting
    leader_log: str
    standby_log: str
    figures: dict[str, Any]


def microtime(at: datetime.datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def hold_lease(env: Env, lease: str) -> None:
    """The test holds the lease (for an hour), so both replicas start as standbys."""
    now = datetime.datetime.now(datetime.UTC)
    spec = {"holderIdentity": "the-test", "leaseDurationSeconds": 3600, "renewTime": microtime(now)}
    client.CoordinationV1Api(env.core.api_client).create_namespaced_lease(
        env.namespace, body({"metadata": {"name": lease}, "spec": spec}), _preload_content=False
    )


def release_lease(env: Env, lease: str) -> None:
    """As LeaseElector.release does: no holder, a 1 s duration; a standby takes it at its next retry."""
    leases = client.CoordinationV1Api(env.core.api_client)
    current: Any = leases.read_namespaced_lease(lease, env.namespace)
    spec = {
        "holderIdentity": None,
        "leaseDurationSeconds": 1,
        "renewTime": microtime(datetime.datetime.now(datetime.UTC)),
    }
    manifest = {"metadata": {"name": lease, "resourceVersion": current.metadata.resource_version}, "spec": spec}
    leases.replace_namespaced_lease(lease, env.namespace, body(manifest), _preload_content=False)


def take_over(env: Env, tmp_path: Path, timings: dict[str, float], signum: int) -> TakeOver:
    """Two replicas stand by while the test holds the lease and a burst arrives; the test lets go, one replica
    leads, binds part of the burst in one cycle and gets `signum` mid-cycle; the other must bind the rest."""
    add_nodes(env)
    lease = unique("lease")
    hold_lease(env, lease)
    args = election_args(env, lease, timings)
    with (
        replica(env, tmp_path / "a.log", *args, host="replica-a") as a,
        replica(env, tmp_path / "b.log", *args, host="replica-b") as b,
    ):
        wait_for(
            lambda: all("is held by the-test; standing by" in r.output() for r in (a, b)),
            timeout=30,
            what="both to read the test's lease and stand by",
        )
        names = create_pods(env, LEADER_BURST)
        release_lease(env, lease)
        wait_for(lambda: leads(a.log) or leads(b.log), timeout=timings["retry"] + 30, what="a leader")
        leader, standby = (a, b) if leads(a.log) else (b, a)
        wait_for(lambda: count_bound(leader.log) >= len(names) // 5, timeout=60, interval=0.02, what="binding")
        assert not leads(standby.log), "two leaders"
        assert count_bound(standby.log) == 0, "the standby bound pods while the leader led"
        leader.process.send_signal(signum)
        signalled_at = time.time()
        wait_for(lambda: all_bound(env, len(names)), timeout=timings["duration"] + 60, what="the pods bound")
        if signum == signal.SIGTERM:
            assert leader.process.wait(timeout=30) == 0
        assert standby.process.poll() is None
    leader_log, standby_log = leader.output(), standby.output()
    accounting = Accounting.of(env, names, leader_log, standby_log)
    released = [t for t, _, msg in entries(leader_log) if msg.startswith("released lease")]
    standby_binds = bound_times(standby_log)
    figures = {
        "signal": signal.Signals(signum).name,
        "pods": len(names),
        "lease_duration": timings["duration"],
        "renew_deadline": timings["renew"],
        "retry_period": timings["retry"],
        # None when the old leader's queued binds left the standby nothing to bind (SIGTERM, see below)
        "take_over_seconds": round(min(standby_binds) - signalled_at, 2) if standby_binds else None,
        "standby_acquired_after_seconds": round(first_time(standby_log, "acquired leadership") - signalled_at, 2),
        "bound_by_leader": len(bound_times(leader_log)),
        "bound_by_standby": len(bound_times(standby_log)),
        "leader_binds_after_release": sum(1 for t in bound_times(leader_log) if released and t > released[0]),
        "conflicts_409": (leader_log + standby_log).count("(already bound)"),
        "without_bound_line": len(accounting.without_line()),
        "without_scheduled_event": len(accounting.without_event()),
        # a Bound line is missing only if the bind committed before the signal: the killed leader made it
        "without_bound_line_bound_after_signal": sum(
            1 for n in accounting.without_line() if accounting.bound_at[n] > signalled_at + 1
        ),
    }
    record(f"leader {figures['signal']} mid-burst", **figures)
    return TakeOver(accounting, leader_log, standby_log, figures)


@pytest.fixture(
    scope="module",
    params=[pytest.param(SHORT_LEASE, id="lease 4s"), pytest.param(DEFAULT_LEASE, id="default lease 15s")],
)
def killed_leader(
    request: pytest.FixtureRequest, cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TakeOver]:
    logs = tmp_path_factory.mktemp("killed-leader")
    with namespace_env(cluster, logs) as env:
        yield take_over(env, logs, request.param, signal.SIGKILL)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_the_standby_takes_over_within_a_lease_when_the_leader_is_killed(killed_leader: TakeOver) -> None:
    figures = killed_leader.figures
    # The standby waits out the lease from when it last saw it renewed (up to one retry period before the kill)
    # and notices at its next retry. Its first Bound line follows once its first cycle has decided the backlog.
    assert figures["standby_acquired_after_seconds"] <= figures["lease_duration"] + figures["retry_period"] + 1
    assert figures["take_over_seconds"] <= figures["lease_duration"] + figures["retry_period"] + 10


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_killed_leader_and_its_standby_never_bind_a_pod_twice(killed_leader: TakeOver) -> None:
    accounting = killed_leader.accounting
    assert accounting.unbound() == []
    assert accounting.twice() == {}
    # SIGKILL loses the Bound lines of binds the leader made but had not logged yet (lines follow a cycle's
    # decisions, in order), never those of the standby: every pod without a line was bound before the kill.
    assert killed_leader.figures["without_bound_line_bound_after_signal"] == 0


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_killed_leader_loses_no_more_scheduled_events_than_binds_in_flight(killed_leader: TakeOver) -> None:
    """The Scheduled event is posted by the bind's own thread right after the bind: a SIGKILL can lose only
    the events of the binds in flight, at most one per bind thread."""
    assert len(killed_leader.accounting.without_event()) <= PARALLELISM


@pytest.fixture(scope="module")
def stopped_leader(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TakeOver]:
    logs = tmp_path_factory.mktemp("stopped-leader")
    with namespace_env(cluster, logs) as env:
        yield take_over(env, logs, DEFAULT_LEASE, signal.SIGTERM)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_leader_stopped_with_sigterm_releases_the_lease_and_the_standby_takes_over_at_once(
    stopped_leader: TakeOver,
) -> None:
    # Released, the lease is taken at the standby's next retry, not after a lease duration.
    assert stopped_leader.figures["standby_acquired_after_seconds"] <= DEFAULT_LEASE["retry"] + 2
    take_over = stopped_leader.figures["take_over_seconds"]
    assert take_over is None or take_over < DEFAULT_LEASE["duration"]
    # A graceful stop loses nothing: every pod exactly once, over both logs.
    stopped_leader.accounting.assert_exactly_once()
    assert quiet(stopped_leader.leader_log + stopped_leader.standby_log) == []


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_leader_stopped_with_sigterm_binds_nothing_after_releasing_its_lease(stopped_leader: TakeOver) -> None:
    assert stopped_leader.figures["leader_binds_after_release"] == 0


@pytest.mark.timeout(60)
def test_two_replicas_on_one_host_elect_one_leader(env: Env, tmp_path: Path) -> None:
    lease = unique("lease")
    args = election_args(env, lease, SHORT_LEASE)
    leases = client.CoordinationV1Api(env.core.api_client)

    def spec() -> client.V1LeaseSpec:
        read = leases.read_namespaced_lease(lease, env.namespace).spec
        assert read is not None
        return read

    with replica(env, tmp_path / "a.log", *args) as a:
        wait_for(lambda: leads(a.log), timeout=30, what="replica a to lead")
        holder = spec().holder_identity
        with replica(env, tmp_path / "b.log", *args) as b:
            wait_for(lambda: f"is held by {holder}; standing by" in b.output(), timeout=30, what="b to stand by")
            since = spec().renew_time
            assert since is not None

            def renewed_for_a_lease_duration() -> bool:
                now = spec()
                assert now.holder_identity == holder, "the lease changed hands"
                assert now.renew_time is not None
                return (now.renew_time - since).total_seconds() > SHORT_LEASE["duration"]

            # Long enough for b to take the lease if it judged it by a's renewals, which keep it valid.
            wait_for(renewed_for_a_lease_duration, timeout=30, what="a to renew for a whole lease duration")
            assert not leads(b.log), "two leaders"


# --- two replicas without election ----------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_two_replicas_racing_without_election_never_bind_a_pod_twice(env: Env, tmp_path: Path) -> None:
    add_nodes(env)
    with replica(env, tmp_path / "a.log", *FAST) as a, replica(env, tmp_path / "b.log", *FAST) as b:
        wait_for(lambda: "starting:" in a.output() and "starting:" in b.output(), timeout=30, what="both replicas")
        names = create_pods(env, RACE_BURST)
        wait_for(lambda: all_bound(env, len(names)), timeout=60, what="the pods bound")
    assert a.exit_code == b.exit_code == 0
    text = a.output() + b.output()
    conflicts = text.count("(already bound)")
    record(
        "two replicas without election",
        pods=len(names),
        bound_by_a=count_bound(a.log),
        bound_by_b=count_bound(b.log),
        conflicts_409=conflicts,
    )
    Accounting.of(env, names, a.output(), b.output()).assert_exactly_once()
    assert conflicts > 0, "the replicas never raced: nothing was proven"
    # A 409 is an answer, not a failure: no error, no traceback, no retry.
    assert quiet(text) == []
    assert retries(text) == []


# --- throttling -------------------------------------------------------------------------------------------------

# With API Priority and Fairness on (the default), --max-requests-inflight and --max-mutating-requests-inflight
# only size APF's seats (1 + 1 here): excess requests wait in APF's queues and no 429 comes back (measured: a
# 300-pod burst, no retries). With APF off the classic max-inflight filter answers 429 with Retry-After: 1,
# except to system:masters (the admin), so the scheduler runs as a ServiceAccount with rbac-deploy.yaml's role.
THROTTLED = {
    "MAX_REQUESTS_INFLIGHT": "1",
    "MAX_MUTATING_REQUESTS_INFLIGHT": "1",
    "KUBE_APISERVER_EXTRA_FLAGS": "--enable-priority-and-fairness=false",
}
THROTTLED_BURST = 300


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def samples(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """/metrics as {(sample name, labels): value}."""
    status, text = get(port, "/metrics")
    assert status == 200
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sample(port: int, name: str, **labels: str) -> float:
    return samples(port).get((name, frozenset(labels.items())), 0.0)


def service_account_kubeconfig(env: Env, directory: Path) -> str:
    """A kubeconfig for a ServiceAccount bound to rbac-deploy.yaml's ClusterRole (not system:masters)."""
    role = next(
        d for d in yaml.safe_load_all((ROOT / "rbac-deploy.yaml").read_text()) if d and d["kind"] == "ClusterRole"
    )
    rbac = client.RbacAuthorizationV1Api(env.core.api_client)
    rbac.create_cluster_role(role)
    env.core.create_namespaced_service_account(env.namespace, body({"metadata": {"name": "scheduler"}}))
    rbac.create_cluster_role_binding(
        body(
            {
                "metadata": {"name": f"{env.namespace}-scheduler"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": role["metadata"]["name"],
                },
                "subjects": [{"kind": "ServiceAccount", "name": "scheduler", "namespace": env.namespace}],
            }
        )
    )
    token = service_account_token(env.core, "scheduler", env.namespace, 3600)
    document = yaml.safe_load(Path(env.cluster.kubeconfig).read_text())
    document["users"][0]["user"] = {"token": token}
    path = directory / "scheduler.kubeconfig"
    path.write_text(yaml.safe_dump(document))
    return str(path)


@dataclass
class Throttled:
    accounting: Accounting
    log: str
    exit_code: int | None
    api_retries_metric: float


@pytest.fixture(scope="module")
def throttled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Throttled]:
    directory = tmp_path_factory.mktemp("throttled")
    with private_env(directory / "cluster", THROTTLED) as admin:
        as_service_account = dataclasses.replace(
            admin, cluster=dataclasses.replace(admin.cluster, kubeconfig=service_account_kubeconfig(admin, directory))
        )
        add_nodes(admin, 5)
        port = free_port()
        started = time.time()
        with as_service_account.scheduler(*FAST, "--metrics-port", str(port), log=directory / "scheduler.log") as s:
            names = create_pods(admin, THROTTLED_BURST)
            wait_for(lambda: all_bound(admin, THROTTLED_BURST), timeout=120, what=f"{THROTTLED_BURST} pods bound")
            bound_at = time.time()
            wait_for(lambda: get(port, "/readyz")[0] == 200, timeout=10, what="/readyz")
            metric = sum(v for (name, _), v in samples(port).items() if name == "my_scheduler_api_retries_total")
            assert s.process.poll() is None
        text = s.output()
        accounting = Accounting.of(admin, names, text)
        record(
            "throttled API server (max inflight 1 + 1, APF off)",
            pods=THROTTLED_BURST,
            seconds_to_bind_all=round(bound_at - started, 2),
            retries_logged=len(retries(text)),
            retries_429=sum(1 for r in retries(text) if "HTTP 429" in r),
            retries_by_call=Counter(r.split(" ", 1)[0] for r in retries(text)),
            errors_logged=len(quiet(text)),
            api_retries_metric=metric,
        )
        yield Throttled(accounting, text, s.exit_code, metric)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_throttled_api_server_answers_429_and_every_pod_is_still_bound_exactly_once(throttled: Throttled) -> None:
    assert throttled.exit_code == 0
    accounting = throttled.accounting
    assert accounting.unbound() == []
    assert accounting.twice() == {}
    assert accounting.without_line() == []
    assert accounting.stale_unschedulable == []
    assert [r for r in retries(throttled.log) if "HTTP 429" in r], "no 429 was retried: the throttle never bit"
    assert "Traceback" not in throttled.log


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_throttled_api_server_drops_no_scheduled_event(throttled: Throttled) -> None:
    assert throttled.accounting.without_event() == []


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_retries_are_counted_in_my_scheduler_api_retries_total(throttled: Throttled) -> None:
    assert throttled.api_retries_metric > 0


# --- health and metrics -----------------------------------------------------------------------------------------


@pytest.mark.timeout(90)
def test_healthz_readyz_and_metrics_after_binding(env: Env, tmp_path: Path) -> None:
    count = 12
    env.node("n", cpu="4")
    for i in range(count):
        env.pod(f"p{i:02}", cpu="100m")
    env.pod("huge", cpu="64")
    port = free_port()
    name = env.scheduler_name
    with env.scheduler(*FAST, "--metrics-port", str(port), log=tmp_path / "scheduler.log"):
        wait_for(lambda: _answers(port), timeout=30, what="the metrics port")
        wait_for(
            lambda: sample(port, "scheduler_schedule_attempts_total", result="scheduled", profile=name) == count,
            timeout=60,
            what=f"{count} scheduled attempts counted",
        )
        # The gauge is set as a cycle starts: a cycle after the binds sees only `huge` (tried, or backing off).
        wait_for(
            lambda: (
                sample(port, "scheduler_pending_pods", queue="active")
                + sample(port, "scheduler_pending_pods", queue="backoff")
                + sample(port, "scheduler_pending_pods", queue="unschedulable")
                == 1
            ),
            timeout=30,
            what="one pending pod",
        )
        assert get(port, "/healthz") == (200, "ok")
        assert get(port, "/readyz") == (200, "ok")
        metrics = samples(port)
        assert get(port, "/nope")[0] == 404
    scheduled = frozenset({("result", "scheduled"), ("profile", name)})
    unschedulable = frozenset({("result", "unschedulable"), ("profile", name)})
    assert metrics[("scheduler_schedule_attempts_total", scheduled)] == count
    assert metrics[("scheduler_schedule_attempts_total", unschedulable)] >= 1
    assert metrics[("scheduler_scheduling_attempt_duration_seconds_count", scheduled)] == count
    pending = {dict(labels)["queue"]: v for (n, labels), v in metrics.items() if n == "scheduler_pending_pods"}
    assert set(pending) == {"active", "backoff", "unschedulable", "gated"}
    assert metrics[("scheduler_pod_scheduling_attempts_count", frozenset())] == count
    assert metrics[("my_scheduler_leader", frozenset())] == 1  # no election: it always acts


def accept_forever(server: socket.socket, handle: Any) -> None:
    """Accept connections on `server` in a daemon thread until it is closed, passing each to `handle`."""

    def loop() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:  # closed: the test is over
                return
            handle(connection)

    threading.Thread(target=loop, daemon=True).start()


@contextmanager
def listening() -> Iterator[socket.socket]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server


def fake_kubeconfig(path: Path, port: int) -> str:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": f"https://127.0.0.1:{port}"}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "c",
            }
        )
    )
    return str(path)


@pytest.mark.timeout(60)
def test_readyz_is_503_until_a_first_cycle_ends_while_healthz_is_200(tmp_path: Path) -> None:
    port = free_port()
    held: list[socket.socket] = []
    with listening() as api:
        accept_forever(api, held.append)  # an API server that accepts and never answers
        command = [
            sys.executable,
            str(ROOT / "scheduler.py"),
            "--kubeconfig",
            fake_kubeconfig(tmp_path / "kubeconfig", api.getsockname()[1]),
            "--metrics-port",
            str(port),
        ]
        with open(tmp_path / "scheduler.log", "w") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for(lambda: _answers(port), timeout=30, what="the metrics port")
            assert get(port, "/healthz") == (200, "ok")
            assert get(port, "/readyz") == (503, "no scheduling cycle finished yet")
        finally:
            process.kill()
            process.wait(timeout=10)


def _answers(port: int) -> bool:
    try:
        get(port, "/healthz")
    except OSError:
        return False
    return True


# --- logs ---------------------------------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_json_logs_parse_and_carry_pod_node_and_reason(env: Env) -> None:
    node = env.node("n", cpu="4")
    # Its own node: a module-scoped fixture's nodes may share the cluster meanwhile, and score better.
    env.pod("fits", cpu="100m", nodeSelector={"kubernetes.io/hostname": node})
    env.pod("huge", cpu="64")
    result = env.run_once("--log-format", "json")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines()]  # every line parses
    assert all({"ts", "level", "msg"} <= set(line) for line in lines)
    bound = [line for line in lines if line["msg"].startswith("Bound ")]
    assert [(b["pod"], b["node"]) for b in bound] == [(f"{env.namespace}/fits", node)]
    unschedulable = [line for line in lines if line.get("reason") == "Unschedulable"]
    assert [u["pod"] for u in unschedulable] == [f"{env.namespace}/huge"]
    assert "Insufficient cpu" in unschedulable[0]["msg"]


# --- transport errors ---------------------------------------------------------------------------------------------


def forward(connection: socket.socket, upstream: tuple[str, int]) -> None:
    """Pipe `connection` to `upstream` both ways, each direction in a daemon thread, until either side closes."""
    remote = socket.create_connection(upstream)

    def pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for end in (source, sink):
            with contextlib.suppress(OSError):
                end.shutdown(socket.SHUT_RDWR)

    threading.Thread(target=pump, args=(connection, remote), daemon=True).start()
    threading.Thread(target=pump, args=(remote, connection), daemon=True).start()


def through_proxy(env: Env, tmp_path: Path, port: int, **cluster: str) -> kubeapi.Api:
    """An Api whose kubeconfig points at `port` on 127.0.0.1 (the API server's certificate names that address,
    whatever the port), with `cluster` fields added to its cluster entry."""
    document = yaml.safe_load(Path(env.cluster.kubeconfig).read_text())
    for entry in document["clusters"]:
        entry["cluster"].update(server=f"https://127.0.0.1:{port}", **cluster)
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(document))
    return kubeapi.Api(kubeapi.load_client(str(tmp_path / "kubeconfig")), component="test", instance="test")


def upstream_of(env: Env) -> tuple[str, int]:
    upstream = urllib.parse.urlsplit(env.core.api_client.configuration.host)
    return upstream.hostname or "", upstream.port or 0


@contextmanager
def dropping_two(env: Env, tmp_path: Path) -> Iterator[tuple[kubeapi.Api, list[socket.socket]]]:
    """An Api behind a proxy that closes the first two connections before the TLS handshake ends and forwards
    the others to the real API server; with the connections it accepted."""
    connections: list[socket.socket] = []

    def drop_two(connection: socket.socket) -> None:
        connections.append(connection)
        if len(connections) <= 2:
            connection.close()
        else:
            forward(connection, upstream_of(env))

    with listening() as proxy:
        accept_forever(proxy, drop_two)
        yield through_proxy(env, tmp_path, proxy.getsockname()[1]), connections


def test_a_connection_dropped_during_the_tls_handshake_is_retried(
    env: Env, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The proxy's two dropped connections are the client's status 0 (transient): the call is retried, each retry
    logged once, and the third connection gets the answer."""
    node = env.node("n")
    with dropping_two(env, tmp_path) as (api, connections), caplog.at_level(logging.WARNING, logger="my-scheduler"):
        answer = api.read_node(node)
    assert answer.metadata is not None and answer.metadata.name == node
    assert len(connections) == 3
    retried = [r.getMessage() for r in caplog.records]
    assert [m.split(", retrying: ")[0] for m in retried] == [
        "read_node failed (attempt 1/8)",
        "read_node failed (attempt 2/8)",
    ], retried
    # How the drop surfaces depends on where the handshake was cut: the client's status 0 (SSLError) or urllib3's
    # ProtocolError (connection reset); both are connection failures, and both are retried.
    assert all(", retrying: HTTP 0 " in m or ", retrying: ProtocolError(" in m for m in retried), retried


def test_a_write_whose_connection_drops_during_the_tls_handshake_is_retried(
    env: Env, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The same for the scheduler's own requests (bindings, events, lists: a kept-alive connection per thread,
    connections.py): the failed connection is dropped and the retry opens a new one."""
    pod = env.pod("p")
    node = env.node("n")
    with dropping_two(env, tmp_path) as (api, connections), caplog.at_level(logging.WARNING, logger="my-scheduler"):
        assert api.bind(pod, node) == (kubeapi.BindResult.BOUND, "")
    assert len(connections) == 3
    assert [r.getMessage().split(", retrying: ")[0] for r in caplog.records] == [
        "post_binding failed (attempt 1/8)",
        "post_binding failed (attempt 2/8)",
    ]
    assert env.node_of("p") == node


def test_a_kept_alive_connection_the_server_closed_is_opened_again(
    env: Env, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The API server closes idle connections (after 90 s, or when it restarts): the next request on one fails,
    is retried once on a new connection, and gets its answer."""
    node = env.node("n")
    accepted: list[socket.socket] = []

    def keep(connection: socket.socket) -> None:
        accepted.append(connection)
        forward(connection, upstream_of(env))

    with listening() as proxy:
        accept_forever(proxy, keep)
        api = through_proxy(env, tmp_path, proxy.getsockname()[1])

        def names() -> list[str]:
            return [n["metadata"]["name"] for n in api.list_page("Node", "", 1000, None)["items"]]

        assert node in names()
        accepted[0].shutdown(socket.SHUT_RDWR)  # the proxy closes it, as the server would
        with caplog.at_level(logging.WARNING, logger="my-scheduler"):
            assert node in names()
    assert len(accepted) == 2
    assert [r.getMessage().split(", retrying: ")[0] for r in caplog.records] == ["list_page failed (attempt 1/8)"]


def test_a_configuration_the_kept_alive_connections_do_not_serve_goes_through_the_clients_pool(
    env: Env, tmp_path: Path
) -> None:
    """A kubeconfig with a `tls-server-name` (or a proxy): connections.usable says no, and the same requests go
    through the client's urllib3 pool, with that name checked against the server's certificate."""
    pod = env.pod("p")
    node = env.node("n")
    api = through_proxy(env, tmp_path, upstream_of(env)[1], **{"tls-server-name": "kubernetes"})
    assert not connections.usable(api.core.api_client.configuration)
    assert api.bind(pod, node) == (kubeapi.BindResult.BOUND, "")
    api.event(pod, "Normal", "Scheduled", f"Successfully assigned {env.namespace}/p to {node}")
    assert [e.message for e in env.events("Scheduled")] == [f"Successfully assigned {env.namespace}/p to {node}"]
    wrong = through_proxy(env, tmp_path, upstream_of(env)[1], **{"tls-server-name": "not-the-server"})
    with pytest.raises(Exception, match=r"certificate|hostname"):
        wrong.list_page("Node", "", 1, None)
