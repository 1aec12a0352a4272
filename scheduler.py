"""my-scheduler: a Kubernetes scheduler daemon. One loop: observe pending pods, decide with `policies/`, bind.

python scheduler.py [--scheduler-name my-scheduler] [--interval 1] [--config policy.yaml] [--once] [--dry-run]
python scheduler.py explain <namespace>/<pod>
python scheduler.py bind <namespace>/<pod> <node> [--force] [--dry-run]
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import signal
import socket
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from kubernetes.client import V1Pod, V1PodSpec

import observability
from cache import (
    ClusterCache,
    compact,
    pending_pod,
    pod_model,
)
from cli import Config, make_config, parse_args
from event_handlers import EventHandlers
from kubeapi import (
    Api,
    BindResult,
    PodRef,
    Reporter,
    call_quietly,
    condition_message,
    describe,
    load_client,
    report_bound,
)
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
from policies.algorithm import Decision, FilterCache, nodes_to_find, schedule
from policies.config import ConfigError
from policies.framework import Code, NodeInfo, PodInfo, Profile
from policies.volume_binding import PodVolumes, VolumeBinding, volume_plan
from preemptor import Preemptor
from scheduling_queue import PendingPod, SchedulingQueue
from volume_binder import VolumeBindingError, bind_volumes

log = logging.getLogger("my-scheduler")
_T = TypeVar("_T")

RESYNC_SECONDS = 30.0  # watch mode: the longest sleep (the queue's periodic flush needs a turn)
# Pods decided between two looks at the watch events: bounds the inbox's backlog during a burst and how stale
# a decision's view of the cluster can be.
STEP_PODS = 256
REPORT_THREADS = 4  # posting FailedScheduling events, PodScheduled conditions and preemption's writes


# --- the scheduler ----------------------------------------------------------------------------------------


def read_ahead(items: Iterator[_T], thread: Executor) -> Iterator[_T]:
    """What `items` yields, each next one read on `thread` while the caller handles this one: a LIST page is on
    its way (the API server's time, the JSON) while the loop decides the pods of the one before. An error
    raises where the item would have come."""
    following = thread.submit(list, itertools.islice(items, 1))  # [] after the last
    while ahead := following.result():
        following = thread.submit(list, itertools.islice(items, 1))
        yield ahead[0]


def spec(pod: V1Pod) -> V1PodSpec:
    return pod.spec or V1PodSpec(containers=[])


def wants_pod_adds(pod: V1Pod) -> bool:
    """Whether a pod added somewhere could make this unschedulable pod fit: only required pod affinity and
    hard topology spread constraints can turn on another pod's arrival (kube's QueueingHints for Pod/Add)."""
    affinity = spec(pod).affinity
    return bool(spec(pod).topology_spread_constraints) or bool(affinity and affinity.pod_affinity)


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


# A bind handed to the pool, with the volume writes assumed for it (forgotten if it fails).
InFlight = tuple[Attempt, "Future[tuple[BindResult, str] | None]", "PodVolumes"]


class Scheduler:
    """Schedules what is pending against the informer-fed cache, one cycle at a time.

    The loop's thread owns the cache and the queue; informer threads hand their records over through the
    event handlers' inbox (event_handlers.py, which sets `wake`); bind threads only talk to the API server and
    return their outcome; a pod that fits nowhere goes to the preemptor (preemptor.py). `may_act` (not stopping,
    and the leader) is checked before every bind."""

    def __init__(
        self,
        api: Api,
        config: Config,
        may_act: Callable[[], bool] = lambda: True,
        clock: Callable[[], float] = time.monotonic,
        stop: threading.Event | None = None,
    ) -> None:
        self.api = api
        self.config = config
        self.may_act = may_act
        self.clock = clock
        self.profiles = {p.scheduler_name: p for p in config.profiles}
        self.cache = ClusterCache(clock)
        self.queue = SchedulingQueue(clock)
        self.stop = stop or threading.Event()
        self.handlers = EventHandlers(api, config, self.cache, self.stop)
        self.wake = self.handlers.wake  # watch mode: something to do
        self.pool = ThreadPoolExecutor(config.parallelism, thread_name_prefix="bind")
        self._lister = ThreadPoolExecutor(1, thread_name_prefix="list")  # poll mode: the next page, read ahead
        # FailedScheduling events, conditions and preemption's writes have threads of their own: they never wait
        # behind binds. Flushed at close, after the binds.
        self.reports = Reporter(REPORT_THREADS, backlog=config.parallelism)
        self.preemptor = Preemptor(api, self.cache, self.queue, self.reports, clock, dry_run=config.dry_run)
        self._in_flight: deque[InFlight] = deque()  # binds handed to the pool, oldest first
        # The profiles whose VolumeBinding binds claims before the pod's Binding (with how long it waits for the
        # claims to be bound).
        self._binds_volumes = {
            p.scheduler_name: f.bind_timeout for p in config.profiles for f in p.filters if isinstance(f, VolumeBinding)
        }
        self.health: Health | None = None  # beaten between steps: a long burst is not a hung loop
        self._start = 0

    # --- the loop's thread --------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the informers once and wait for their first LIST (event_handlers.py)."""
        self.handlers.start(self.clock)

    def _apply_inbox(self) -> None:
        """Apply what the informers handed over; a cluster change moves unschedulable pods on, once per drain."""
        for event in self.handlers.apply(self._pending, self._not_pending):
            self.queue.on_cluster_event(event)

    def _pending(self, pod: PendingPod) -> None:
        """A pending pod listed or watched: queued, and its nomination (a preemption's, maybe another
        scheduler's) known. A nomination of ours the record does not show yet is kept (its patch may lag)."""
        self.queue.add_or_update(pod)
        if pod.nominated_node and self.cache.nomination(pod.uid) != pod.nominated_node:
            # An unreadable pod fails where it is decided, with its log line.
            with contextlib.suppress(Exception):
                self.cache.nominate(compact(PodInfo.of(pod_model(json.loads(pod.manifest)), pod.nominated_node)))

    def _not_pending(self, uid: str) -> None:
        """Bound (by anyone) or deleted: out of the queue, and no longer holding a nominated node's room."""
        self.queue.remove(uid)
        self.cache.unnominate(uid)
        self.preemptor.forget(uid)

    def next_retry(self) -> float | None:
        """When the earliest pod in backoff may be tried again (for watch mode's sleep)."""
        return self.queue.next_wake()

    def cycle(self) -> CycleStats:
        """Apply the watch events, (poll mode) list what is pending, and try every pod that is due, STEP_PODS
        at a time with a look at the watch events in between; the cycle ends when its binds have."""
        self.start()
        started = self.clock()
        stats = CycleStats()
        self._apply_inbox()  # a standby keeps its cache warm too, for a fast take-over
        if not self.may_act():  # and lists nothing: it costs the API server nothing
            return stats
        self.cache.expire()
        stopped = False
        if self.config.mode == "poll":
            # Page by page, trying what is due after each: a first LIST of 50,000 pending pods need not end
            # before the first bind. Pods no longer listed (bound or deleted meanwhile) leave the queue after.
            listed: set[str] = set()
            for page in read_ahead(self.api.pending_pods(self.profiles), self._lister):
                for item in page:
                    if not self.cache.has_pod(uid := item["metadata"]["uid"]):
                        self._pending(pending_pod(item))
                        listed.add(uid)
                stopped = stopped or self._drain(stats)
            self.queue.retain(listed)
            self.cache.retain_nominations(listed)
        if not stopped:
            self._drain(stats)
        self._reap(stats, wait=True)
        stats.seconds = self.clock() - started
        CYCLE_DURATION.observe(stats.seconds)
        return stats

    def _drain(self, stats: CycleStats) -> bool:
        """Try every pod that is due, STEP_PODS at a time with the watch events applied in between. True when
        the loop must stop binding."""
        for queue, count in self.queue.counts().items():
            PENDING_PODS.labels(queue).set(count)
        while step := [pod for _, pod in zip(range(STEP_PODS), iter(self.queue.pop, None), strict=False)]:
            stats.pending += len(step)
            stopped = self._schedule(step, stats)
            self._reap(stats, wait=False)
            if stopped:
                return True
            if self.health:
                self.health.beat()
            self._apply_inbox()
        return False

    def _schedule(self, pending: Sequence[PendingPod], stats: CycleStats) -> bool:
        """Decide each pod against the cache, assume it and hand its bind to a bind thread. True when the
        loop must stop binding (SIGTERM, or the lease is lost)."""
        nodes = self.cache.node_list()
        cache = self.cache.filter_cache()
        for i, entry in enumerate(pending):
            try:
                pod = pod_model(json.loads(entry.manifest))
            except Exception:
                log.exception("%s: cannot read the pod", entry.key, extra={"pod": entry.key})
                self.queue.failed(entry.uid)
                continue
            attempt = Attempt(pod, PodRef.of(pod), str(spec(pod).scheduler_name), self.clock())
            if pod.metadata and pod.metadata.deletion_timestamp is not None:
                log.debug("skip schedule deleting pod: %s", attempt.ref)
                self._not_pending(entry.uid)
                continue
            decision = self._decide(pod, nodes, cache)
            if decision.status.code is Code.ERROR:  # a plugin's bug (kube's framework.Error): retried after a backoff
                log.error(
                    "%s: scheduling failed: %s",
                    attempt.ref,
                    decision.message,
                    exc_info=decision.status.error,
                    extra={"pod": str(attempt.ref)},
                )
                stats.errors += 1
                self._record(attempt, "error")
                self.queue.failed(entry.uid)
                continue
            if decision.node is None:
                stats.unschedulable += 1
                self._record(attempt, "unschedulable")
                self._unschedulable(pod, *self.preemptor.post_filter(self._profile(pod), pod, nodes, decision))
                continue
            if self.config.dry_run:
                log.info("Would bind %s -> %s (dry run)", attempt.ref, decision.node)
                self.queue.failed(entry.uid)
                continue
            if not self.may_act():
                log.info("stopping, or no longer the leader: this cycle ends before binding %s", attempt.ref)
                for untried in pending[i:]:  # back to the queue as they were
                    self.queue.release(untried.uid)
                return True
            # Later pods must see this one on its node, or a burst piles onto one node.
            self.cache.assume(compact(PodInfo.of(pod, decision.node)))
            plan = self._assume_volumes(attempt, decision.node)
            # Back-pressure: decisions run ahead of the binds by two binds per thread at most, or a burst of
            # 50,000 pods would hold thousands of queued binds (each with its pod's model) in memory.
            while len(self._in_flight) >= 2 * self.config.parallelism:
                self._bound(*self._in_flight.popleft(), stats)
            future = self.pool.submit(self._bind, attempt, decision.node, plan)
            self._in_flight.append((attempt, future, plan))
        return False

    def _reap(self, stats: CycleStats, *, wait: bool) -> None:
        """Learn how the finished binds went (all of them, with `wait`)."""
        running: deque[InFlight] = deque()
        for attempt, future, plan in self._in_flight:
            if wait or future.done():
                self._bound(attempt, future, plan, stats)
            else:
                running.append((attempt, future, plan))
        self._in_flight = running

    def _assume_volumes(self, attempt: Attempt, node: str) -> PodVolumes:
        """What VolumeBinding must write before the pod's Binding (unbound WaitForFirstConsumer claims), counted
        in the cache at once so the next pods do not take the same volumes."""
        info = self.cache.nodes.get(node)
        if attempt.profile not in self._binds_volumes or info is None:
            return PodVolumes()
        plan = volume_plan(attempt.pod, info, self.cache.volumes)
        if plan:
            self.cache.assume_volumes(plan, node)
        return plan

    def _bind(self, attempt: Attempt, node: str, volumes: PodVolumes | None = None) -> tuple[BindResult, str] | None:
        """In a bind thread: bind the pod's volumes if it has some to bind (kube's PreBind), post the binding and
        report it at once, not at the end of the cycle. None: not posted (leadership lost meanwhile, the volumes
        not bound) or failed after every retry."""
        key = str(attempt.ref)
        if not self.may_act():  # leadership may have gone while this bind waited for a thread
            return None
        if volumes:
            try:
                bind_volumes(self.api, volumes, node, self.stop, timeout=self._binds_volumes[attempt.profile])
            except VolumeBindingError as e:
                message = f'running PreBind plugin "VolumeBinding": {e}'
                log.error("%s: %s", key, message, extra={"pod": key, "node": node})
                call_quietly(self.api.event, attempt.pod, "Warning", "FailedScheduling", message)
                return None
            if not self.may_act():
                return None
        try:
            result, message = self.api.bind(attempt.pod, node)
        except Exception as e:  # noqa: BLE001 — retries are exhausted and the outcome is unknown
            log.error("%s: bind to %s failed: %s", key, node, describe(e), extra={"pod": key, "node": node})
            return None
        if result is BindResult.BOUND:
            # Posted by the bind's own thread: a crash loses at most the events of the binds in flight, and on two
            # cores handing it to a report thread measured 0.93x the throughput (more threads for one GIL).
            report_bound(self.api, attempt.pod, node)
        elif result is BindResult.FORBIDDEN:
            log.error("%s: FORBIDDEN to bind (does the ClusterRole grant create on pods/binding?): %s", key, message)
        else:
            log.info("%s: not bound (%s): %s", key, result.value, message, extra={"pod": key, "result": result.value})
        return result, message

    def _bound(
        self, attempt: Attempt, bind: Future[tuple[BindResult, str] | None], volumes: PodVolumes, stats: CycleStats
    ) -> None:
        """Back in the loop's thread (waiting for the bind if need be): the cache and the queue learn how it went."""
        uid = attempt.ref.uid
        outcome = bind.result()
        result = outcome[0] if outcome else None
        if volumes and result is not BindResult.BOUND:
            self.cache.forget_volumes(volumes)
        if result is BindResult.BOUND:
            stats.bound += 1
            self._record(attempt, "scheduled")
            POD_SCHEDULING_ATTEMPTS.observe(self.queue.done(uid))
            self.cache.unnominate(uid)  # the API server clears status.nominatedNodeName at binding
            self.preemptor.forget(uid)
            self.cache.finish_binding(uid)
            return
        self.cache.forget(uid)
        if result in (BindResult.ALREADY_BOUND, BindResult.GONE):  # the watch tells where it went, if anywhere
            self._not_pending(uid)
            return
        if outcome is None and not self.may_act():  # not posted: still pending, for the next leader or cycle
            self.queue.release(uid)
            return
        # No FailedScheduling for an error: the server may have bound it before the connection broke. If it
        # did not, the pod is tried again after a backoff.
        stats.errors += 1
        self._record(attempt, "error")
        self.queue.failed(uid)

    def _decide(self, pod: V1Pod, nodes: Sequence[NodeInfo], cache: FilterCache) -> Decision:
        # Our own nomination counts before its status patch comes back: schedule() tries that node first.
        if (node := self.cache.nomination(PodRef.of(pod).uid)) is not None and pod.status is not None:
            pod.status.nominated_node_name = node
        decision = schedule(
            self._profile(pod),
            pod,
            nodes,
            find=nodes_to_find(len(nodes)),
            start=self._start,
            cache=cache,
            nominated=self.cache.nominated(),
            objects=self.cache.objects(),
        )
        # kube's nextStartNodeIndex: the next pod starts where this one's search stopped.
        self._start = (self._start + decision.examined) % max(len(nodes), 1)
        return decision

    def _profile(self, pod: V1Pod) -> Profile:
        return self.profiles[str(spec(pod).scheduler_name)]

    def _record(self, attempt: Attempt, result: str) -> None:
        SCHEDULE_ATTEMPTS.labels(result, attempt.profile).inc()
        ATTEMPT_DURATION.labels(result, attempt.profile).observe(self.clock() - attempt.started)

    def _unschedulable(self, pod: V1Pod, message: str, nominated_node: str | None = None) -> None:
        """Park it until the cluster changes; post the event and the condition only when the message (or the
        nominated node) changes."""
        ref = PodRef.of(pod)
        current = (pod.status.nominated_node_name if pod.status else None) or ""
        renominated = nominated_node is not None and nominated_node != current
        if not self.queue.unschedulable(ref.uid, message, wants_pod_adds=wants_pod_adds(pod)) and not renominated:
            return
        log.info("%s unschedulable: %s", ref, message, extra={"pod": str(ref), "reason": "Unschedulable"})
        if self.config.dry_run or (not renominated and condition_message(pod) == message):
            return
        self.reports.submit(call_quietly, self.api.event, pod, "Warning", "FailedScheduling", message)
        nominate = nominated_node if renominated else None
        self.reports.submit(call_quietly, self.api.mark_unschedulable, pod, message, nominate)

    def close(self) -> None:
        self.stop.set()
        self.handlers.close()
        self.pool.shutdown(wait=True)
        self._lister.shutdown(wait=True)
        self.reports.close()


# --- the loop ---------------------------------------------------------------------------------------------


def run(
    config: Config,
    api: Api,
    stop: threading.Event,
    *,
    may_act: Callable[[], bool] = lambda: True,
    health: Health | None = None,
) -> int:
    """Cycle until `stop`. Polling sleeps `interval`; watch mode sleeps until a watch event, the next backoff
    expiry, or RESYNC_SECONDS, whichever comes first."""
    scheduler = Scheduler(api, config, may_act, stop=stop)
    scheduler.health = health
    if config.once:  # one pass must be a real one: give leader election up to a lease duration to settle
        deadline = time.monotonic() + config.lease_duration + config.retry_period
        while not may_act() and not stop.is_set() and time.monotonic() < deadline:
            stop.wait(0.05)
    if config.mode == "watch":  # so SIGTERM ends a watch-mode sleep at once

        def wake_on_stop() -> None:
            stop.wait()
            scheduler.wake.set()

        threading.Thread(target=wake_on_stop, daemon=True).start()
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
            if config.mode == "poll":
                stop.wait(config.interval)
                continue
            retry_at = scheduler.next_retry()
            timeout = RESYNC_SECONDS if retry_at is None else max(0.0, min(RESYNC_SECONDS, retry_at - time.monotonic()))
            scheduler.wake.wait(timeout)
            scheduler.wake.clear()
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
        from manual_bind import manual_bind

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
            api.client,
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
    code = run(config, api, stop, may_act=may_act, health=health)
    if elector is not None:  # released only now that no bind is in flight, so the next leader never races us
        stop.set()
        election.join(timeout=config.retry_period + 5)
        elector.release()
    log.info("stopped")
    return code


def _loggable(config: Config) -> dict[str, Any]:
    return {
        "profiles": {p.scheduler_name: [f"{s.name}x{w}" for s, w in p.scores] for p in config.profiles},
        **{k: getattr(config, k) for k in Config.__slots__ if k != "profiles"},
    }


if __name__ == "__main__":
    sys.exit(main())
