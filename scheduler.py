"""my-scheduler: a Kubernetes scheduler daemon. One loop: observe pending pods, decide with `policies/`, bind.

python scheduler.py [--scheduler-name my-scheduler] [--interval 1] [--config policy.yaml] [--once] [--dry-run]
python scheduler.py explain <namespace>/<pod>
python scheduler.py bind <namespace>/<pod> <node> [--force] [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NoReturn

from kubernetes.client import V1Pod

from kubeapi import Api, BindResult, call_quietly, condition_message, load_client
from policies.config import ConfigError, default_profile, load
from policies.framework import Decision, NodeInfo, Profile, nodes_to_find, schedule

log = logging.getLogger("my-scheduler")

BACKOFF_INITIAL_SECONDS = 1.0  # kube-scheduler's podInitialBackoffSeconds
BACKOFF_MAX_SECONDS = 10.0  # kube-scheduler's podMaxBackoffSeconds


# --- configuration ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Config:
    scheduler_name: str = "my-scheduler"
    interval: float = 1.0
    kubeconfig: str | None = None
    config: str | None = None
    once: bool = False
    dry_run: bool = False
    log_level: str = "INFO"
    log_format: str = "text"
    parallelism: int = 16
    profiles: tuple[Profile, ...] = ()


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line and exit 2, not argparse's usage block."""
        self.exit(2, f"{self.prog}: error: {message}\n")


def _env(name: str, default: str | None) -> str | None:
    return os.environ.get(f"MY_SCHEDULER_{name.upper().replace('-', '_')}", default)


def _positive(value: str) -> float:
    number = float(value)
    if not number > 0:
        raise ValueError(value)
    return number


def _add_common(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """Flags every command takes; on subcommands they default to SUPPRESS so they do not reset the main ones."""

    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    parser.add_argument(
        "--scheduler-name",
        default=default(_env("scheduler-name", "my-scheduler")),
        help="the spec.schedulerName this scheduler serves without a --config profile "
        "(env MY_SCHEDULER_SCHEDULER_NAME; default my-scheduler)",
    )
    parser.add_argument(
        "--kubeconfig",
        default=default(os.environ.get("KUBECONFIG")),
        help="kubeconfig path (default: in-cluster config inside a pod, else KUBECONFIG or ~/.kube/config)",
    )
    parser.add_argument(
        "--config",
        default=default(_env("config", None)),
        help="policy YAML: profiles, filters and weighted scores (env MY_SCHEDULER_CONFIG)",
    )
    parser.add_argument(
        "--log-level",
        default=default(_env("log-level", "INFO")),
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        type=str.upper,
    )
    parser.add_argument("--log-format", default=default(_env("log-format", "text")), choices=["text", "json"])


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = ArgumentParser(
        prog="scheduler.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    _add_common(parser, suppress=False)
    parser.add_argument(
        "--interval",
        type=_positive,
        default=_env("interval", "1.0"),
        help="seconds between polls (env MY_SCHEDULER_INTERVAL; default 1.0)",
    )
    parser.add_argument("--once", action="store_true", default=_env("once", "") == "true", help="one pass, then exit")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        default=_env("dry-run", "") == "true",
        help="decide and log, never bind or write",
    )
    parser.add_argument(
        "--parallelism", type=int, default=_env("parallelism", "16"), help="binds in flight at once (default 16)"
    )
    commands = parser.add_subparsers(dest="command", metavar="{explain,bind}")
    explain = commands.add_parser("explain", help="why a pod is (or would be) placed where: every node, every policy")
    explain.add_argument("pod", help="<namespace>/<pod>")
    explain.add_argument("--output", choices=["table", "json"], default="table")
    _add_common(explain, suppress=True)
    bind = commands.add_parser("bind", help="bind a pod to a node by hand, after the same checks the scheduler makes")
    bind.add_argument("pod", help="<namespace>/<pod>")
    bind.add_argument("node")
    bind.add_argument("--force", action="store_true", help="bind even if filters fail, naming what was overridden")
    bind.add_argument("--dry-run", action="store_true", default=argparse.SUPPRESS, help="check only, bind nothing")
    _add_common(bind, suppress=True)
    args = parser.parse_args(argv)
    if args.parallelism < 1:
        parser.error(f"argument --parallelism: must be at least 1, got {args.parallelism}")
    return args


def make_config(args: argparse.Namespace) -> Config:
    """Flags (with their environment defaults) → Config; a bad policy file is a ConfigError."""
    profiles = load(args.config, args.scheduler_name) if args.config else (default_profile(args.scheduler_name),)
    return Config(
        scheduler_name=args.scheduler_name,
        interval=float(args.interval),
        kubeconfig=args.kubeconfig,
        config=args.config,
        once=args.once,
        dry_run=args.dry_run,
        log_level=args.log_level,
        log_format=args.log_format,
        parallelism=args.parallelism,
        profiles=profiles,
    )


# --- logging --------------------------------------------------------------------------------------------


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
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if fmt == "json" else logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    )
    logging.basicConfig(level=level, handlers=[handler], force=True)
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    logging.getLogger("urllib3").setLevel(logging.ERROR)


# --- the scheduler ----------------------------------------------------------------------------------------


def pod_key(pod: V1Pod) -> str:
    return f"{pod.metadata.namespace}/{pod.metadata.name}"


def queue_order(pod: V1Pod) -> tuple[int, float, str]:
    """kube's PrioritySort: higher priority first, then the oldest."""
    created = pod.metadata.creation_timestamp
    return (-(pod.spec.priority or 0), created.timestamp() if created else 0.0, pod_key(pod))


def node_infos(nodes: Sequence[Any], assigned: Sequence[V1Pod]) -> list[NodeInfo]:
    by_node: dict[str, list[V1Pod]] = {}
    for pod in assigned:
        by_node.setdefault(pod.spec.node_name, []).append(pod)
    infos = [NodeInfo(n, by_node.get(n.metadata.name, [])) for n in nodes]
    return sorted(infos, key=lambda n: n.name)


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


@dataclass
class Scheduler:
    api: Api
    config: Config
    clock: Callable[[], float] = time.monotonic
    backoff: dict[str, Backoff] = field(default_factory=dict)
    _start: int = 0

    def __post_init__(self) -> None:
        self.profiles = {p.scheduler_name: p for p in self.config.profiles}
        self.pool = ThreadPoolExecutor(self.config.parallelism, thread_name_prefix="bind")

    def cycle(self) -> CycleStats:
        """Observe → decide → act, once. Reads nodes and assigned pods only when something is pending."""
        started = self.clock()
        stats = CycleStats()
        listed = self.api.pending_pods(self.profiles)
        # Forget the backoff of pods that are no longer pending (bound, deleted).
        uids = {p.metadata.uid for p in listed}
        self.backoff = {uid: entry for uid, entry in self.backoff.items() if uid in uids}
        pending = [p for p in listed if self._ready(p)]
        stats.pending = len(pending)
        if pending:
            nodes = node_infos(self.api.nodes(), self.api.assigned_pods())
            by_name = {n.name: n for n in nodes}
            in_flight: list[tuple[V1Pod, str, Future[tuple[BindResult, str]]]] = []
            for pod in sorted(pending, key=queue_order):
                try:
                    decision = self._decide(pod, nodes)
                except Exception:
                    log.exception("%s: scheduling failed", pod_key(pod), extra={"pod": pod_key(pod)})
                    stats.errors += 1
                    continue
                if decision.node is None:
                    stats.unschedulable += 1
                    self._unschedulable(pod, decision.message)
                    continue
                # Later pods in this cycle must see this one on its node, or a burst piles onto one node.
                by_name[decision.node].add_pod(_assumed(pod, decision.node))
                if self.config.dry_run:
                    log.info("Would bind %s -> %s (dry run)", pod_key(pod), decision.node)
                    continue
                in_flight.append((pod, decision.node, self.pool.submit(self.api.bind, pod, decision.node)))
            for pod, node, future in in_flight:
                self._finish_bind(pod, node, future, stats)
        stats.seconds = self.clock() - started
        return stats

    def _ready(self, pod: V1Pod) -> bool:
        """Pods being deleted, gated, or backing off after a failure wait; so do pods of unknown profiles."""
        if pod.metadata.deletion_timestamp is not None:
            log.debug("skip schedule deleting pod: %s", pod_key(pod))
            return False
        if pod.spec.scheduling_gates:
            return False
        entry = self.backoff.get(pod.metadata.uid)
        return entry is None or self.clock() >= entry.retry_at

    def _decide(self, pod: V1Pod, nodes: Sequence[NodeInfo]) -> Decision:
        self._start = (self._start + 1) % max(len(nodes), 1)
        profile = self.profiles[pod.spec.scheduler_name]
        return schedule(profile, pod, nodes, find=nodes_to_find(len(nodes)), start=self._start)

    def _unschedulable(self, pod: V1Pod, message: str) -> None:
        """Event and condition only when the message changes; then back off 1 s, 2 s, … up to 10 s."""
        key = pod_key(pod)
        entry = self.backoff.setdefault(pod.metadata.uid, Backoff(message=""))
        entry.attempts += 1
        entry.retry_at = self.clock() + min(BACKOFF_INITIAL_SECONDS * 2 ** (entry.attempts - 1), BACKOFF_MAX_SECONDS)
        if message == entry.message:
            return
        entry.message = message
        log.info("%s unschedulable: %s", key, message, extra={"pod": key, "reason": "Unschedulable"})
        if self.config.dry_run or condition_message(pod) == message:
            return
        self.pool.submit(call_quietly, self.api.event, pod, "Warning", "FailedScheduling", message)
        self.pool.submit(call_quietly, self.api.mark_unschedulable, pod, message)

    def _finish_bind(self, pod: V1Pod, node: str, future: Future[tuple[BindResult, str]], stats: CycleStats) -> None:
        key = pod_key(pod)
        try:
            result, message = future.result()
        except Exception as e:  # noqa: BLE001 — retries are exhausted; the pod stays pending for the next cycle
            stats.errors += 1
            log.error("%s: bind to %s failed: %s", key, node, e, extra={"pod": key, "node": node})
            self._unschedulable(pod, f"binding rejected: {e}")
            return
        if result is BindResult.BOUND:
            stats.bound += 1
            self.backoff.pop(pod.metadata.uid, None)
            log.info("Bound %s -> %s", key, node, extra={"pod": key, "node": node, "result": "bound"})
            self.pool.submit(
                call_quietly, self.api.event, pod, "Normal", "Scheduled", f"Successfully assigned {key} to {node}"
            )
        elif result is BindResult.FORBIDDEN:
            stats.errors += 1
            log.error("%s: FORBIDDEN to bind (does the ClusterRole grant create on pods/binding?): %s", key, message)
        else:
            log.info("%s: not bound (%s): %s", key, result.value, message, extra={"pod": key, "result": result.value})

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def _assumed(pod: V1Pod, node: str) -> V1Pod:
    """The pod as it will be once bound, for the in-cycle view (kube-scheduler's 'assumed' pod)."""
    assumed = pod.model_copy(deep=False)
    assumed.spec = pod.spec.model_copy(update={"node_name": node})
    return assumed


# --- the loop ---------------------------------------------------------------------------------------------


def run(config: Config, api: Api, stop: threading.Event) -> int:
    scheduler = Scheduler(api, config)
    try:
        while not stop.is_set():
            try:
                stats = scheduler.cycle()
                if stats.pending:
                    log.debug("cycle: %s", stats)
            except Exception:
                log.exception("cycle failed; retrying in %.1f s", config.interval)
            if config.once:
                break
            stop.wait(config.interval)
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
        print(f"scheduler.py: error: cannot load Kubernetes configuration: {e}", file=sys.stderr)
        return 2
    api = Api(api_client, component=config.scheduler_name, instance=f"{config.scheduler_name}-{socket.gethostname()}")
    if args.command == "explain":
        from explain import explain

        return explain(api, config, args.pod, args.output)
    if args.command == "bind":
        from explain import manual_bind

        return manual_bind(api, config, args.pod, args.node, force=args.force, dry_run=args.dry_run)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    log.info(
        "starting: scheduler names %s, interval %.1fs, config %s, dry-run %s, once %s",
        ",".join(p.scheduler_name for p in config.profiles),
        config.interval,
        config.config or "(defaults)",
        config.dry_run,
        config.once,
    )
    code = run(config, api, stop)
    log.info("stopped")
    return code


if __name__ == "__main__":
    sys.exit(main())
