"""my-scheduler: a Kubernetes scheduler daemon. One loop: observe pending pods, decide with `policies/`, bind.

python scheduler.py [--scheduler-name my-scheduler] [--interval 1] [--config policy.yaml] [--once] [--dry-run]
python scheduler.py explain <namespace>/<pod>
python scheduler.py bind <namespace>/<pod> <node> [--force] [--dry-run]
"""

from __future__ import annotations

import json
import logging
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from kubernetes.client import V1Pod, V1PodSpec

import observability
from cli import Config, make_config, parse_args
from kubeapi import Api, BindResult, PodRef, Watcher, call_quietly, condition_message, describe, load_client
from leader import LeaseElector
from observability import (
    ATTEMPT_DURATION,
    CYCLE_DURATION,
    IS_LEADER,
    PENDING_PODS,
    POD_SCHEDULING_ATTEMPTS,
    SCHEDULE_ATTEMPTS,
    Health,
    setup_logging,
)
from policies.config import ConfigError
from policies.framework import Decision, FilterCache, NodeInfo, nodes_to_find, schedule, snapshot

log = logging.getLogger("my-scheduler")

BACKOFF_INITIAL_SECONDS = 1.0  # kube-scheduler's podInitialBackoffSeconds
BACKOFF_MAX_SECONDS = 10.0  # kube-scheduler's podMaxBackoffSeconds
RESYNC_SECONDS = 30.0  # watch mode's safety-net full pass
WATCH_BATCH_SECONDS = 0.05  # watch mode: how long a wake-up waits for the rest of a burst


# --- the scheduler ----------------------------------------------------------------------------------------


def spec(pod: V1Pod) -> V1PodSpec:
    return pod.spec or V1PodSpec(containers=[])


def queue_order(pod: V1Pod) -> tuple[int, float, str]:
    """kube's PrioritySort: higher priority first, then the oldest."""
    created = pod.metadata.creation_timestamp if pod.metadata else None
    return (-(spec(pod).priority or 0), created.timestamp() if created else 0.0, str(PodRef.of(pod)))


def assumed(pod: V1Pod, node: str) -> V1Pod:
    """The pod as it will be once bound, for the in-cycle view (kube-scheduler's 'assumed' pod)."""
    copy = pod.model_copy(deep=False)
    copy.spec = spec(pod).model_copy(update={"node_name": node})
    return copy


@dataclass(slots=True)
class Backoff:
    message: str
    attempts: int = 0
    retry_at: float = 0.0


@dataclass(slots=True)
class CycleStats:
    pending: int = 0
    bound: int = 0
    unschedulable: int = 0
    errors: int = 0
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class Attempt:
    pod: V1Pod
    ref: PodRef
    profile: str
    started: float


class Scheduler:
    """Schedules what is pending, one cycle at a time. `may_act` (not stopping, and the leader) is checked
    before every bind."""

    def __init__(
        self,
        api: Api,
        config: Config,
        may_act: Callable[[], bool] = lambda: True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.api = api
        self.config = config
        self.may_act = may_act
        self.clock = clock
        self.profiles = {p.scheduler_name: p for p in config.profiles}
        self.backoff: dict[str, Backoff] = {}
        self.pool = ThreadPoolExecutor(config.parallelism, thread_name_prefix="bind")
        # FailedScheduling events and conditions have threads of their own: they never wait behind binds.
        self.reports = ThreadPoolExecutor(4, thread_name_prefix="report")
        self._lock = threading.Lock()  # bind threads update the backoff table and the cycle's counts
        self._start = 0

    def next_retry(self) -> float | None:
        """When the earliest pod in backoff may be tried again (for watch mode's sleep)."""
        return min((b.retry_at for b in self.backoff.values()), default=None)

    def cycle(self) -> CycleStats:
        """Observe → decide → act, once. Reads nodes and assigned pods only when something is pending."""
        started = self.clock()
        stats = CycleStats()
        if not self.may_act():  # a standby replica lists nothing: it costs the API server nothing
            return stats
        listed = self.api.pending_pods(self.profiles)
        # Forget the backoff of pods that are no longer pending (bound, deleted).
        uids = {PodRef.of(p).uid for p in listed}
        self.backoff = {uid: entry for uid, entry in self.backoff.items() if uid in uids}
        pending = [p for p in listed if self._ready(p)]
        gated = sum(1 for p in listed if spec(p).scheduling_gates)
        PENDING_PODS.labels("active").set(len(pending))
        PENDING_PODS.labels("backoff").set(len(listed) - len(pending) - gated)
        PENDING_PODS.labels("gated").set(gated)
        stats.pending = len(pending)
        if pending:
            self._schedule(sorted(pending, key=queue_order), stats)
        stats.seconds = self.clock() - started
        CYCLE_DURATION.observe(stats.seconds)
        return stats

    def _schedule(self, pending: Sequence[V1Pod], stats: CycleStats) -> None:
        nodes = snapshot(self.api.nodes(), self.api.assigned_pods())
        by_name = {n.name: n for n in nodes}
        cache = FilterCache()
        in_flight: list[Future[None]] = []
        for pod in pending:
            attempt = Attempt(pod, PodRef.of(pod), str(spec(pod).scheduler_name), self.clock())
            try:
                decision = self._decide(pod, nodes, cache)
            except Exception:
                log.exception("%s: scheduling failed", attempt.ref, extra={"pod": str(attempt.ref)})
                stats.errors += 1
                self._record(attempt, "error")
                continue
            if decision.node is None:
                stats.unschedulable += 1
                self._record(attempt, "unschedulable")
                self._unschedulable(pod, decision.message)
                continue
            # Later pods in this cycle must see this one on its node, or a burst piles onto one node.
            by_name[decision.node].add_pod(assumed(pod, decision.node))
            if self.config.dry_run:
                log.info("Would bind %s -> %s (dry run)", attempt.ref, decision.node)
                continue
            if not self.may_act():
                log.info("stopping, or no longer the leader: this cycle ends before binding %s", attempt.ref)
                break
            in_flight.append(self.pool.submit(self._bind, attempt, decision.node, stats))
        for future in in_flight:  # the cycle ends when its binds have (after SIGTERM only those already posted)
            future.result()

    def _bind(self, attempt: Attempt, node: str, stats: CycleStats) -> None:
        """In a bind thread: post the binding and report it at once, not at the end of the cycle."""
        key = str(attempt.ref)
        if not self.may_act():  # leadership may have gone while this bind waited for a thread
            return
        try:
            result, message = self.api.bind(attempt.pod, node)
        except Exception as e:  # noqa: BLE001 — retries are exhausted and the outcome is unknown
            with self._lock:
                stats.errors += 1
                self._record(attempt, "error")
                # No FailedScheduling here: the server may have bound it before the connection broke. If it
                # did not, the pod is still pending next cycle, after a backoff.
                self._back_off(attempt.ref)
            log.error("%s: bind to %s failed: %s", key, node, describe(e), extra={"pod": key, "node": node})
            return
        with self._lock:
            if result is BindResult.BOUND:
                stats.bound += 1
                self._record(attempt, "scheduled")
                entry = self.backoff.pop(attempt.ref.uid, None)
                POD_SCHEDULING_ATTEMPTS.observe(1 + (entry.attempts if entry else 0))
            elif result is BindResult.FORBIDDEN:
                stats.errors += 1
                self._record(attempt, "error")
        if result is BindResult.BOUND:
            log.info("Bound %s -> %s", key, node, extra={"pod": key, "node": node, "result": "bound"})
            # Posted here, not queued: a crash then loses at most the events of the binds in flight.
            call_quietly(self.api.event, attempt.pod, "Normal", "Scheduled", f"Successfully assigned {key} to {node}")
        elif result is BindResult.FORBIDDEN:
            log.error("%s: FORBIDDEN to bind (does the ClusterRole grant create on pods/binding?): %s", key, message)
        else:
            log.info("%s: not bound (%s): %s", key, result.value, message, extra={"pod": key, "result": result.value})

    def _ready(self, pod: V1Pod) -> bool:
        """Pods being deleted, gated, or backing off after a failure wait."""
        if pod.metadata and pod.metadata.deletion_timestamp is not None:
            log.debug("skip schedule deleting pod: %s", PodRef.of(pod))
            return False
        if spec(pod).scheduling_gates:
            return False
        entry = self.backoff.get(PodRef.of(pod).uid)
        return entry is None or self.clock() >= entry.retry_at

    def _decide(self, pod: V1Pod, nodes: Sequence[NodeInfo], cache: FilterCache) -> Decision:
        self._start = (self._start + 1) % max(len(nodes), 1)
        profile = self.profiles[str(spec(pod).scheduler_name)]
        return schedule(profile, pod, nodes, find=nodes_to_find(len(nodes)), start=self._start, cache=cache)

    def _record(self, attempt: Attempt, result: str) -> None:
        SCHEDULE_ATTEMPTS.labels(result, attempt.profile).inc()
        ATTEMPT_DURATION.labels(result, attempt.profile).observe(self.clock() - attempt.started)

    def _back_off(self, ref: PodRef) -> Backoff:
        """1 s, 2 s, 4 s … up to 10 s before the pod is tried again (kube's per-pod backoff)."""
        entry = self.backoff.setdefault(ref.uid, Backoff(message=""))
        entry.attempts += 1
        entry.retry_at = self.clock() + min(BACKOFF_INITIAL_SECONDS * 2 ** (entry.attempts - 1), BACKOFF_MAX_SECONDS)
        return entry

    def _unschedulable(self, pod: V1Pod, message: str) -> None:
        """Back off; post the event and the condition only when the message changes."""
        ref = PodRef.of(pod)
        entry = self._back_off(ref)
        if message == entry.message:
            return
        entry.message = message
        log.info("%s unschedulable: %s", ref, message, extra={"pod": str(ref), "reason": "Unschedulable"})
        if self.config.dry_run or condition_message(pod) == message:
            return
        self.reports.submit(call_quietly, self.api.event, pod, "Warning", "FailedScheduling", message)
        self.reports.submit(call_quietly, self.api.mark_unschedulable, pod, message)

    def close(self) -> None:
        self.pool.shutdown(wait=True)
        self.reports.shutdown(wait=True)


# --- the loop ---------------------------------------------------------------------------------------------


def run(
    config: Config,
    api: Api,
    stop: threading.Event,
    *,
    may_act: Callable[[], bool] = lambda: True,
    health: Health | None = None,
    wake: threading.Event | None = None,
) -> int:
    """Cycle until `stop`. Polling sleeps `interval`; with `wake` (watch mode) the loop sleeps until a watch
    event, the next backoff expiry, or a full pass every RESYNC_SECONDS, whichever comes first."""
    scheduler = Scheduler(api, config, may_act)
    if config.once:  # one pass must be a real one: give leader election up to a lease duration to settle
        deadline = time.monotonic() + config.lease_duration + config.retry_period
        while not may_act() and not stop.is_set() and time.monotonic() < deadline:
            stop.wait(0.05)
    try:
        while not stop.is_set():
            try:
                stats = scheduler.cycle()
                if stats.pending:
                    log.debug("cycle: %s", stats)
            except Exception:
                log.exception("cycle failed; retrying in %.1f s", config.interval)
            if health:
                health.beat()
            if config.once:
                break
            if wake is None:
                stop.wait(config.interval)
                continue
            retry_at = scheduler.next_retry()
            timeout = RESYNC_SECONDS if retry_at is None else max(0.0, min(RESYNC_SECONDS, retry_at - time.monotonic()))
            if wake.wait(timeout):
                stop.wait(WATCH_BATCH_SECONDS)  # let a burst of events arrive: one cycle for all of them
            wake.clear()
    finally:
        scheduler.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        config = make_config(args)
    except ConfigError as e:
        print(f"scheduler.py: error: {e}", file=sys.stderr)
        return 2
    setup_logging(config.log_level, config.log_format)
    try:
        api_client = load_client(config.kubeconfig, config.parallelism + 4)
    except Exception as e:  # noqa: BLE001 — a missing or broken kubeconfig is a usage error
        where = config.kubeconfig or "the in-cluster service account or ~/.kube/config"
        print(f"scheduler.py: error: cannot load Kubernetes configuration from {where}: {e}", file=sys.stderr)
        return 2
    api = Api(api_client, component=config.scheduler_name, instance=f"{config.scheduler_name}-{socket.gethostname()}")
    if args.command == "explain":
        from explain import explain

        return explain(api, config, args.pod, args.output)
    if args.command == "bind":
        from explain import manual_bind

        return manual_bind(api, config, args.pod, args.node, force=args.force, dry_run=args.dry_run)
    return serve(config, api)


def serve(config: Config, api: Api) -> int:
    """The daemon: signals, health and metrics, leader election, watch or poll, until SIGTERM/SIGINT."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    log.info("starting: %s", json.dumps(_loggable(config)))
    health = Health(stale_after=max(60.0, 10 * config.interval))
    if config.metrics_port:
        try:
            observability.serve(config.metrics_port, health)
        except OSError as e:
            print(f"scheduler.py: error: --metrics-port {config.metrics_port}: {e.strerror}", file=sys.stderr)
            return 2
    # After SIGTERM nothing new is bound: binds already posted finish, queued ones are dropped.
    may_act: Callable[[], bool] = lambda: not stop.is_set()  # noqa: E731
    elector: LeaseElector | None = None
    IS_LEADER.set(0 if config.leader_elect else 1)
    if config.leader_elect:
        elector = LeaseElector(
            api.core.api_client,
            config.lease_namespace,
            config.lease_name,
            # client-go's identity: unique even for two replicas on one host (hostNetwork, a laptop)
            f"{api.instance}_{uuid.uuid4().hex[:8]}",
            lease_duration=config.lease_duration,
            renew_deadline=config.renew_deadline,
            retry_period=config.retry_period,
            on_change=lambda leading: IS_LEADER.set(int(leading)),
        )
        may_act = lambda: not stop.is_set() and elector.is_leader()  # noqa: E731
        election = threading.Thread(target=elector.run, args=(stop,), name="leader-election")
        election.start()
    wake = None
    if config.mode == "watch":
        wake = threading.Event()
        Watcher(api, [p.scheduler_name for p in config.profiles], wake, stop).start()
        threading.Thread(target=_wake_on, args=(stop, wake), daemon=True).start()
    code = run(config, api, stop, may_act=may_act, health=health, wake=wake)
    if elector is not None:  # released only now that no bind is in flight, so the next leader never races us
        stop.set()
        election.join(timeout=config.retry_period + 5)
        elector.release()
    log.info("stopped")
    return code


def _wake_on(stop: threading.Event, wake: threading.Event) -> None:
    """So SIGTERM ends a watch-mode sleep at once."""
    stop.wait()
    wake.set()


def _loggable(config: Config) -> dict[str, Any]:
    return {
        "profiles": {p.scheduler_name: [f"{s.name}x{w}" for s, w in p.scores] for p in config.profiles},
        **{k: getattr(config, k) for k in Config.__slots__ if k != "profiles"},
    }


if __name__ == "__main__":
    sys.exit(main())
