"""One contender against one workload: create the pods, start the contender, watch the binds, measure, check
the placements, clean up. bench.py strings these runs together; this module knows nothing of scenarios."""

from __future__ import annotations

import contextlib
import json
import os
import random
import string
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import placement
import profile_summary
from contenders import Contender, Running
from measure import (
    ProcSample,
    percentile,
    proc_sample,
    request_delta,
    request_totals,
    sample_summary,
    throughput_samples,
)
from preemption import PreemptionLedger
from raw_limit import round_robin
from rawkube import ApiError, RawKube, binding_body, in_parallel, pods_path, watch_lines
from workload import (
    HIGH_PREFIX,
    NODE_NAME,
    SHAPE_LABEL,
    PerfWorkload,
    high_pod_bytes,
    high_pod_name,
    low_pod_bytes,
    low_pod_name,
    node_body,
    node_name,
    perf_pod_bytes,
    pod_bytes,
    pod_name,
    priority_class_body,
)

CREATE_THREADS = 16
NOBODY = "bench-nobody"  # the schedulerName of pods the harness binds itself: no contender is asked about them
WARMUP_TIMEOUT = 120.0
# A scheduler may still be posting events for pods it bound when it is stopped; it gets this long to finish
# (those requests are counted; its CPU is not: that was sampled at the last bind).
STOP_GRACE = 60.0


def suffix(length: int = 5) -> str:
    return "".join(random.choices(string.ascii_lowercase + string.digits, k=length))


class Progress:
    """One status line on stderr: rewritten in place on a terminal, printed every few seconds otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.prefix = ""
        self._last = 0.0
        self._width = 0

    def status(self, text: str) -> None:
        line = f"{self.prefix} {text}".strip()
        if self.tty:
            sys.stderr.write("\r" + line.ljust(self._width))
            sys.stderr.flush()
            self._width = len(line)
        elif time.monotonic() - self._last >= 10:
            print(line, file=sys.stderr, flush=True)
            self._last = time.monotonic()

    def say(self, text: str) -> None:
        if self.tty and self._width:
            sys.stderr.write("\r" + " " * self._width + "\r")
            self._width = 0
        print(f"{self.prefix} {text}".strip(), file=sys.stderr, flush=True)
        self._last = time.monotonic()


class BindWatcher:
    """Records when each pod of a namespace is seen bound: a watch with `fieldSelector=spec.nodeName!=`, so
    the server sends one ADDED event per pod at the moment it gets a node. The arrival time (monotonic, this
    process) is the bind time; the server's own timestamps have one-second resolution."""

    def __init__(self, kube: RawKube, namespace: str, ledger: PreemptionLedger | None = None) -> None:
        self.kube, self.namespace = kube, namespace
        self.bound: dict[str, float] = {}
        self.nodes: dict[str, str] = {}
        self.deleted: dict[str, float] = {}  # bound pods seen deleted (the preemption scenario's victims)
        self.ledger = ledger  # fed every bind and deletion in the order the server committed them
        self.reconnects = 0
        self._stop = threading.Event()
        self._response: Any = None
        self._thread = threading.Thread(target=self._run, name=f"watch-{namespace}", daemon=True)

    def start(self) -> None:
        listed = self.kube.get(pods_path(self.namespace), limit=1)
        self._version = listed["metadata"]["resourceVersion"]
        self._thread.start()

    def count(self) -> int:
        return len(self.bound)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._follow()
            except Exception as e:  # noqa: BLE001 — reconnect; logged in the result as a reconnect count
                if self._stop.is_set():
                    return
                self.reconnects += 1
                print(f"watch {self.namespace}: {e!r}; reconnecting", file=sys.stderr)
                time.sleep(0.5)

    def _follow(self) -> None:
        query = {
            "watch": "true",
            "fieldSelector": "spec.nodeName!=",
            "resourceVersion": self._version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": 3600,
        }
        self._response = self.kube.stream(pods_path(self.namespace), query, read_timeout=300)
        try:
            for event in watch_lines(self._response, self._stop):
                now = time.monotonic()
                obj = event["object"]
                if event["type"] == "ERROR":
                    self._relist()
                    return
                self._version = obj["metadata"]["resourceVersion"]
                if event["type"] == "BOOKMARK":  # a resourceVersion only, no pod
                    continue
                name = obj["metadata"]["name"]
                if event["type"] in ("ADDED", "MODIFIED"):
                    self._seen_bound(name, obj["spec"]["nodeName"], now)
                elif event["type"] == "DELETED":
                    self._seen_deleted(name, now)
        finally:
            self._response.release_conn()

    def _relist(self) -> None:
        """410 Gone: catch up from a list; binds seen this way get the time of the list (rare, counted)."""
        self.reconnects += 1
        listed = self.kube.get(pods_path(self.namespace), fieldSelector="spec.nodeName!=")
        now = time.monotonic()
        present = {pod["metadata"]["name"] for pod in listed["items"]}
        for name in [n for n in self.bound if n not in present]:  # deleted meanwhile; before the new binds
            self._seen_deleted(name, now)
        for pod in listed["items"]:
            self._seen_bound(pod["metadata"]["name"], pod["spec"]["nodeName"], now)
        self._version = listed["metadata"]["resourceVersion"]

    def _seen_bound(self, name: str, node: str, now: float) -> None:
        if name in self.bound:
            return
        self.bound[name] = now
        self.nodes[name] = node
        if self.ledger is not None:
            self.ledger.bound(name, node)

    def _seen_deleted(self, name: str, now: float) -> None:
        if name not in self.bound or name in self.deleted:
            return
        self.deleted[name] = now
        if self.ledger is not None:
            self.ledger.deleted(name, now)

    def stop(self) -> None:
        self._stop.set()
        if self._response is not None:
            with contextlib.suppress(Exception):  # best effort; the thread is a daemon
                self._response.shutdown()
        self._thread.join(timeout=5)


@dataclass
class Cluster:
    """The control plane the benchmark started (hack/cluster.sh), and what it measures about it."""

    dir: Path
    kubeconfig: str
    bin_dir: Path
    kube: RawKube
    background: dict[str, float] = field(default_factory=dict)  # the API server's own requests per second
    background_cpu: float = 0.0  # control-plane CPU seconds per second while idle

    def control_plane_cpu(self) -> float:
        total = 0.0
        for name in ("kube-apiserver", "etcd"):
            with contextlib.suppress(OSError, ValueError):
                total += proc_sample(int((self.dir / f"{name}.pid").read_text())).cpu_seconds
        return total

    def measure_background(self, seconds: float = 10.0) -> None:
        before, cpu = request_totals(self.kube.metrics()), self.control_plane_cpu()
        time.sleep(seconds)
        after = request_totals(self.kube.metrics())
        self.background = {k: (after[k] - before.get(k, 0)) / seconds for k in after if after[k] > before.get(k, 0)}
        self.background_cpu = (self.control_plane_cpu() - cpu) / seconds

    def requests(self) -> dict[str, int]:
        return dict(request_totals(self.kube.metrics()))

    def ensure_nodes(self, count: int, progress: Progress, body: Callable[[int], dict[str, Any]] = node_body) -> float:
        """Exactly bench-node-00000..count-1 of the shape `body` makes (its bench-shape label): create the missing
        ones, delete the rest, replace those of another shape. Returns the seconds it took."""
        began = time.monotonic()
        shape = body(0)["metadata"]["labels"][SHAPE_LABEL]
        nodes = self.kube.get("/api/v1/nodes")["items"]
        shapes = {
            n["metadata"]["name"]: (n["metadata"].get("labels") or {}).get(SHAPE_LABEL)
            for n in nodes
            if NODE_NAME.match(n["metadata"]["name"])
        }
        wanted = {node_name(i) for i in range(count)}
        extra = sorted(n for n, s in shapes.items() if n not in wanted or s != shape)
        if extra:
            progress.say(f"deleting {len(extra)} nodes")
            in_parallel(lambda k: self.kube.request("DELETE", f"/api/v1/nodes/{extra[k]}"), len(extra), CREATE_THREADS)
        missing = sorted(i for i in range(count) if shapes.get(node_name(i)) != shape)
        if missing:
            progress.say(f"creating {len(missing)} nodes ({shape})")
            bodies = [json.dumps(body(i)).encode() for i in missing]
            in_parallel(lambda k: self.kube.post("/api/v1/nodes", bodies[k]), len(bodies), CREATE_THREADS)
        return time.monotonic() - began

    def create_namespace(self, name: str) -> None:
        body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        self.kube.post("/api/v1/namespaces", json.dumps(body).encode())

    def create_pods(self, bodies: list[tuple[str, bytes]], namespace: str) -> dict[str, float]:
        """POST the pods from 16 threads; returns when each create came back (monotonic)."""
        created: dict[str, float] = {}
        path = pods_path(namespace)

        def create(i: int) -> None:
            name, body = bodies[i]
            self.kube.post(path, body)
            created[name] = time.monotonic()

        in_parallel(create, len(bodies), CREATE_THREADS)
        return created

    def bind_all(self, namespace: str) -> int:
        """Bind every pending pod of the namespace ourselves (the idle scenario's setup, a scheduler_perf
        workload's init pods), next to the pods bound already."""
        items = self.kube.get(pods_path(namespace), fieldSelector="spec.nodeName=")["items"]
        uids = {p["metadata"]["name"]: p["metadata"]["uid"] for p in items}
        nodes = [placement.offer_from_dict(n) for n in self.kube.get("/api/v1/nodes")["items"]]
        bound = [
            placement.needs_from_dict(p)
            for p in self.kube.get("/api/v1/pods", fieldSelector="spec.nodeName!=")["items"]
        ]
        plan = round_robin([placement.needs_from_dict(p) for p in items], nodes, bound)
        bodies = [
            (pods_path(namespace, n.name, "binding"), binding_body(namespace, n.name, uids[n.name], node))
            for n, node in plan
        ]
        in_parallel(lambda i: self.kube.post(*bodies[i]), len(bodies), CREATE_THREADS)
        return len(bodies)

    def delete_pods(self, namespace: str) -> None:
        """Grace 0: without a kubelet nothing would ever confirm a graceful deletion. Events go too, so etcd
        does not grow from one contender to the next."""
        for collection in (pods_path(namespace), f"/api/v1/namespaces/{namespace}/events"):
            self.kube.request("DELETE", collection, query={"gracePeriodSeconds": 0}, timeout=600)
        for _ in range(100):
            if not self.kube.get(pods_path(namespace), limit=1)["items"]:
                return
            time.sleep(0.5)
        raise RuntimeError(f"pods of {namespace} still there after deleting them")

    def placement(self, namespace: str, beside: tuple[str, ...] = ()) -> dict[str, Any]:
        """The checks over the namespace's pods and those of `beside` (pods bound before the run, which count
        for capacity and anti-affinity); the spread is of the namespace's pods alone."""
        pods = [placement.needs_from_dict(p) for p in self.kube.get(pods_path(namespace))["items"]]
        others = [placement.needs_from_dict(p) for ns in beside for p in self.kube.get(pods_path(ns))["items"]]
        nodes = [
            placement.offer_from_dict(n)
            for n in self.kube.get("/api/v1/nodes")["items"]
            if NODE_NAME.match(n["metadata"]["name"])
        ]
        broken = placement.violations([*others, *pods], nodes)
        spread = placement.cpu_spread(pods, nodes)
        return {
            "violations": len(broken),
            "violation_examples": broken[:10],
            "spread_stdev_pct": round(spread.stdev, 2),
            "spread_max_minus_min_pct": round(spread.max_minus_min, 2),
            "mean_cpu_pct": round(spread.mean, 2),
        }


@dataclass
class Options:
    timeout: float
    naive_timeout: float
    workdir: Path
    profile_dir: Path | None = None  # py-spy our scheduler into this folder


def contender_env(kubeconfig: str) -> dict[str, str]:
    """The environment minus our scheduler's MY_SCHEDULER_* defaults: every contender runs with its defaults."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MY_SCHEDULER_")}
    env["KUBECONFIG"] = kubeconfig
    return env


def start(cluster: Cluster, contender: Contender, scheduler_name: str, options: Options, tag: str) -> Running:
    command = contender.command(scheduler_name, cluster.kubeconfig, options.workdir, cluster.bin_dir)
    wrapped = options.profile_dir is not None and contender.kind == "ours"
    if wrapped:
        assert options.profile_dir is not None
        out = options.profile_dir / f"{tag}.pyspy.txt"
        command = ["py-spy", "record", "--format", "raw", "--nonblocking", "--rate", "100", "-o", str(out), "--",
                   *command]  # fmt: skip
    return Running(command, options.workdir / f"{tag}.log", contender_env(cluster.kubeconfig), wrapped=wrapped)


def save_profile(options: Options, tag: str) -> None:
    """The py-spy profile of a run, summarised next to the raw stacks (`<tag>.pyspy.txt`, not committed)."""
    if options.profile_dir is None or not (raw := options.profile_dir / f"{tag}.pyspy.txt").exists():
        return
    text = f"# py-spy profile of `{tag}`\n\n" + profile_summary.summarise(raw.read_text())
    (options.profile_dir / f"{tag}.profile.md").write_text(text)


def timeout_for(contender: Contender, options: Options) -> float:
    return options.naive_timeout if contender.kind == "naive" else options.timeout


def wait_bound(
    watcher: BindWatcher,
    expected: int,
    running: Running,
    *,
    deadline: float,
    progress: Progress,
    label: Callable[[], str],
) -> str:
    """Until `expected` pods are bound ("ok"), the deadline ("timeout"), or the contender ended ("exited N")."""
    exited_at: float | None = None
    while True:
        done = watcher.count()
        progress.status(f"{label()} bound {done}/{expected}")
        if done >= expected:
            return "ok"
        now = time.monotonic()
        if now >= deadline:
            return "timeout"
        if exited_at is None and running.exited():
            exited_at = now
        if exited_at is not None and now - exited_at > 3.0:  # binds still in flight reach the watch shortly
            return f"exited {running.proc.returncode}"
        time.sleep(0.2)


def _stop_and_sample(running: Running, grace: float) -> tuple[ProcSample, int | None]:
    """The contender's figures at the end of the measured span, then stop it: a live process is sampled first
    (its shutdown is not counted); one that ended by itself is read from the kernel's account of its life."""
    live = None if running.exited() else running.sample()
    code = running.stop(grace)
    return (running.sample() if live is None else live), code


def _api_figures(
    cluster: Cluster,
    before: dict[str, int],
    after: dict[str, int],
    seconds: float,
    pods: int,
    *,
    harness: dict[str, int] | None = None,
) -> dict[str, Any]:
    """The contender's requests: the delta less the API server's background and the harness's own calls."""
    delta = request_delta(before, after, background_per_second=cluster.background, seconds=seconds)
    delta.subtract(harness or {})
    delta = +delta  # drops what the subtraction left at zero or below
    total = sum(delta.values())
    return {
        "api_requests": total,
        "api_requests_per_pod": round(total / pods, 2) if pods else None,
        "api_requests_by_kind": dict(delta.most_common()),
    }


class Run:
    """One contender's namespace, watch and process; `close` always stops the process and the watch and
    deletes the pods, whatever happened."""

    def __init__(
        self,
        cluster: Cluster,
        contender: Contender,
        tag: str,
        ledger: PreemptionLedger | None = None,
        *,
        init_namespace: bool = False,
    ) -> None:
        self.cluster, self.contender, self.tag = cluster, contender, tag
        self.namespace = f"bench-{tag}"
        self.scheduler_name = f"bench-{contender.name}-{suffix()}"
        # scheduler_perf's init pods live in a namespace of their own (namespace-<op> or sched-0), created and
        # bound before the measured phase; one per run, so the measured pods' terms can name it.
        self.init_namespace = f"{self.namespace}-init" if init_namespace else None
        cluster.create_namespace(self.namespace)
        if self.init_namespace:
            cluster.create_namespace(self.init_namespace)
        self.watcher = BindWatcher(cluster.kube, self.namespace, ledger)
        self.watcher.start()
        self.running: Running | None = None
        self.options: Options | None = None

    def __enter__(self) -> Run:
        return self

    def __exit__(self, *_: object) -> None:
        if self.running is not None:
            self.running.stop()
        if self.options is not None:
            save_profile(self.options, self.tag)
        self.watcher.stop()
        self.cluster.delete_pods(self.namespace)
        if self.init_namespace:
            self.cluster.delete_pods(self.init_namespace)

    def pods(self, count: int) -> list[tuple[str, bytes]]:
        return [(pod_name(i), pod_bytes(i, self.namespace, self.scheduler_name)) for i in range(count)]

    def start(self, options: Options) -> Running:
        self.options = options
        self.running = start(self.cluster, self.contender, self.scheduler_name, options, self.tag)
        return self.running

    def finish(
        self, before: dict[str, int], started: float, pods: int, harness: dict[str, int] | None = None
    ) -> dict[str, Any]:
        """Stop the contender and gather what every scenario reports; `harness` is what the harness itself
        sent meanwhile (the steady scenario's pod creates)."""
        assert self.running is not None
        cpu = self.cluster.control_plane_cpu()
        if not self.contender.daemon:
            self.running.wait(30)  # it exits once its binds are answered; its rusage is exact
        sample, code = _stop_and_sample(self.running, grace=STOP_GRACE)
        # Scraped after the stop: the contender's watches are counted by the API server when they close.
        after = self.cluster.requests()
        window = time.monotonic() - started
        self.watcher.stop()
        figures = {
            "exit_code": code,
            "stop_seconds": self.running.stop_seconds,
            "killed_at_stop": self.running.killed,
            "cpu_seconds": round(sample.cpu_seconds, 3),
            "peak_rss_mib": round(sample.peak_rss_mib, 1),
            "control_plane_cpu_end": cpu,
            "watch_reconnects": self.watcher.reconnects,
            **_api_figures(self.cluster, before, after, window, pods, harness=harness),
            **self.cluster.placement(self.namespace, (self.init_namespace,) if self.init_namespace else ()),
        }
        return figures


def run_batch(
    cluster: Cluster,
    contender: Contender,
    pods: int,
    *,
    options: Options,
    progress: Progress,
    tag: str,
    perf: PerfWorkload | None = None,
    init_pods: int = 0,
) -> dict[str, Any]:
    """All pods created first (contender not running), then the contender starts; measured until the last bind.
    With `perf` (a scheduler_perf workload), its `init_pods` are created and bound by the harness first, in a
    namespace of their own, and the pods are its templates'."""
    with Run(cluster, contender, tag, init_namespace=perf is not None) as run:
        result: dict[str, Any] = {}
        if perf is not None:
            assert run.init_namespace is not None
            result.update(init_pods=init_pods, init_seconds=round(_bind_init(run, perf, init_pods, progress), 3))
            namespaces = (run.namespace, run.init_namespace)  # the anti-affinity template's sched-1, sched-0
            bodies = [(pod_name(i), perf_pod_bytes(perf.measured_template, i, run.namespace, run.scheduler_name,
                                                   namespaces=namespaces)) for i in range(pods)]  # fmt: skip
        else:
            bodies = run.pods(pods)
        progress.status(f"{contender.name}: creating {pods} pods")
        first_create = time.monotonic()
        created = cluster.create_pods(bodies, run.namespace)
        created_all = time.monotonic()
        before, cpu0 = cluster.requests(), cluster.control_plane_cpu()
        started = time.monotonic()
        running = run.start(options)
        outcome = wait_bound(
            run.watcher,
            pods,
            running,
            deadline=started + timeout_for(contender, options),
            progress=progress,
            label=lambda: f"{contender.name} {time.monotonic() - started:.0f}s",
        )
        ended = time.monotonic()
        figures = run.finish(before, started, pods)
        result.update(_bind_figures(run.watcher, created, started, first_create, pods))
        result.update(
            outcome=outcome,
            seconds=round(ended - started, 3),
            create_seconds=round(created_all - first_create, 3),
            control_plane_cpu_seconds=round(figures.pop("control_plane_cpu_end") - cpu0, 3),
            **figures,
        )
        if outcome != "ok":
            result["log_tail"] = running.log_tail()
        return result


def _bind_init(run: Run, perf: PerfWorkload, count: int, progress: Progress) -> float:
    """scheduler_perf's unmeasured createPods of init pods, bound here by the harness (round robin, keeping to
    their constraints) rather than by the contender: seconds taken."""
    assert run.init_namespace is not None
    began = time.monotonic()
    namespace, namespaces = run.init_namespace, (run.namespace, run.init_namespace)
    progress.status(f"{run.contender.name}: creating and binding {count} init pods")
    bodies = [(pod_name(i), perf_pod_bytes(perf.init_template, i, namespace, NOBODY, namespaces=namespaces))
              for i in range(count)]  # fmt: skip
    run.cluster.create_pods(bodies, namespace)
    bound = run.cluster.bind_all(namespace)
    if bound != count:
        raise RuntimeError(f"init pods: bound {bound}/{count}")
    return time.monotonic() - began


def _bind_figures(
    watcher: BindWatcher, created: dict[str, float], started: float, first_create: float, pods: int
) -> dict[str, Any]:
    times = sorted(watcher.bound.values())
    figures: dict[str, Any] = {"pods": pods, "bound": len(times)}
    if not times:
        return figures
    last = times[-1]
    since_start = [t - started for t in times]
    latencies = [watcher.bound[n] - created[n] for n in watcher.bound if n in created]
    figures.update(
        sched_pods_per_s=round(len(times) / max(last - started, 1e-9), 2),
        e2e_pods_per_s=round(len(times) / max(last - first_create, 1e-9), 2),
        bind_phase_pods_per_s=round((len(times) - 1) / (last - times[0]), 2) if len(times) > 1 else None,
        first_bind_s=round(times[0] - started, 3),
        last_bind_s=round(last - started, 3),
        bind_p50_s=round(percentile(since_start, 50), 3),
        bind_p99_s=round(percentile(since_start, 99), 3),
        create_to_bind_p50_s=round(percentile(latencies, 50), 3),
        create_to_bind_p99_s=round(percentile(latencies, 99), 3),
    )
    samples = throughput_samples(times, started)
    summary = sample_summary(samples)
    figures["throughput_samples"] = [round(x, 2) for x in samples]
    if summary:
        figures.update({f"throughput_{k if k != 'average' else 'avg'}": round(v, 2) for k, v in summary.items()})
    return figures


def run_steady(
    cluster: Cluster,
    contender: Contender,
    *,
    rate: float,
    seconds: float,
    options: Options,
    progress: Progress,
    tag: str,
) -> dict[str, Any]:
    """The contender runs (warmed up: one pod bound), then pods arrive at `rate` per second for `seconds`;
    latency is create-returned → seen-bound per pod."""
    count = round(rate * seconds)
    with Run(cluster, contender, tag) as run:
        running = run.start(options)
        launched = time.monotonic()
        cluster.create_pods([("warmup", pod_bytes(1, run.namespace, run.scheduler_name, "warmup"))], run.namespace)
        warm = wait_bound(
            run.watcher,
            1,
            running,
            deadline=launched + WARMUP_TIMEOUT,
            progress=progress,
            label=lambda: f"{contender.name} warm-up",
        )
        result: dict[str, Any] = {"pods": count, "warmup_s": round(time.monotonic() - launched, 3)}
        if warm != "ok":
            return {**result, "outcome": f"warm-up {warm}", "bound": 0, "log_tail": running.log_tail()}
        before, cpu0, sample0 = cluster.requests(), cluster.control_plane_cpu(), running.sample()
        bodies = run.pods(count)
        created: dict[str, float] = {}
        path = pods_path(run.namespace)

        def create(i: int) -> None:
            name, body = bodies[i]
            cluster.kube.post(path, body)
            created[name] = time.monotonic()

        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            for i in range(count):
                delay = started + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                pool.submit(create, i)
                progress.status(f"{contender.name} arrivals {i + 1}/{count}, bound {run.watcher.count() - 1}")
        outcome = wait_bound(
            run.watcher,
            count + 1,
            running,
            deadline=time.monotonic() + min(timeout_for(contender, options), 120.0),
            progress=progress,
            label=lambda: f"{contender.name} draining",
        )
        figures = run.finish(before, started, count, harness={"POST pods": count})
        bound = run.watcher.bound
        latencies = [bound[n] - created[n] for n in created if n in bound]
        last = max((bound[n] for n in created if n in bound), default=started)
        result.update(
            outcome=outcome,
            bound=len(latencies),
            pods_per_s=round(len(latencies) / max(last - started, 1e-9), 2),
            latency_p50_s=round(percentile(latencies, 50), 3) if latencies else None,
            latency_p99_s=round(percentile(latencies, 99), 3) if latencies else None,
            latency_max_s=round(max(latencies), 3) if latencies else None,
            control_plane_cpu_seconds=round(figures.pop("control_plane_cpu_end") - cpu0, 3),
            **figures,
        )
        # CPU over the arrival window only, not the start-up and warm-up before it.
        result["cpu_seconds"] = round(result["cpu_seconds"] - sample0.cpu_seconds, 3)
        if outcome != "ok":
            result["log_tail"] = running.log_tail()
        return result


def wait_requests_settle(cluster: Cluster, *, quiet: float = 1.0, limit: float = 30.0) -> float:
    """Until no binds or events have been sent for `quiet` seconds (at most `limit`): a scheduler may still be
    posting events for the pods it just bound, which belong to the phase before, not to the measured one."""

    def busy() -> int:
        return sum(n for k, n in cluster.requests().items() if k.endswith(("events", "pods/binding")))

    began = time.monotonic()
    last = busy()
    while time.monotonic() - began < limit:
        time.sleep(quiet)
        now = busy()
        if now == last:
            break
        last = now
    return time.monotonic() - began


PRIORITY_CLASSES = "/apis/scheduling.k8s.io/v1/priorityclasses"


def run_preemption(
    cluster: Cluster,
    contender: Contender,
    *,
    init_pods: int,
    pods: int,
    options: Options,
    progress: Progress,
    tag: str,
) -> dict[str, Any]:
    """kube's scheduler_perf PreemptionBasic: the contender starts and binds `init_pods` low-priority pods (four
    fill a node), then `pods` high-priority preemptors are created (16 threads) while it runs; each fits only
    on a node whose four low pods are all evicted. Measured from the first preemptor's create to the last one
    bound; the preemptors' priority comes from a PriorityClass that exists for this run only."""
    priority_class = f"bench-high-{suffix()}"
    cluster.kube.post(PRIORITY_CLASSES, json.dumps(priority_class_body(priority_class)).encode())
    try:
        ledger = PreemptionLedger(lambda name: name.startswith(HIGH_PREFIX))
        with Run(cluster, contender, tag, ledger) as run:
            return _preempt(
                run,
                ledger,
                priority_class=priority_class,
                init_pods=init_pods,
                pods=pods,
                options=options,
                progress=progress,
            )
    finally:
        try:
            cluster.kube.request("DELETE", f"{PRIORITY_CLASSES}/{priority_class}")
        except ApiError as e:  # a leftover class harms no later run (names are unique); the run's figures stand
            print(f"could not delete PriorityClass {priority_class}: {e}", file=sys.stderr)


def _preempt(
    run: Run,
    ledger: PreemptionLedger,
    *,
    priority_class: str,
    init_pods: int,
    pods: int,
    options: Options,
    progress: Progress,
) -> dict[str, Any]:
    cluster, contender, namespace = run.cluster, run.contender, run.namespace
    timeout = timeout_for(contender, options)
    running = run.start(options)
    launched = time.monotonic()
    # scheduler_perf's createPods of the init pods waits for the scheduler under test to bind them all.
    low = [(low_pod_name(i), low_pod_bytes(i, namespace, run.scheduler_name)) for i in range(init_pods)]
    progress.status(f"{contender.name}: creating {init_pods} low-priority pods")
    cluster.create_pods(low, namespace)
    init = wait_bound(
        run.watcher,
        init_pods,
        running,
        deadline=launched + timeout,
        progress=progress,
        label=lambda: f"{contender.name} init pods",
    )
    init_seconds = round(time.monotonic() - launched, 3)
    result: dict[str, Any] = {"pods": pods, "init_pods": init_pods, "init_seconds": init_seconds}
    if init != "ok":
        return {**result, "outcome": f"init {init}", "bound": 0, "init_bound": run.watcher.count(),
                "log_tail": running.log_tail()}  # fmt: skip
    result["settle_seconds"] = round(wait_requests_settle(cluster), 2)
    before, cpu0, sample0 = cluster.requests(), cluster.control_plane_cpu(), running.sample()
    high = [(high_pod_name(i), high_pod_bytes(i, namespace, run.scheduler_name, priority_class)) for i in range(pods)]
    progress.status(f"{contender.name}: creating {pods} preemptors")
    first_create = time.monotonic()
    created = cluster.create_pods(high, namespace)
    outcome = wait_bound(
        run.watcher,
        init_pods + pods,
        running,
        deadline=first_create + timeout,
        progress=progress,
        label=lambda: f"{contender.name} {time.monotonic() - first_create:.0f}s, init + preemptors",
    )
    figures = run.finish(before, first_create, pods, harness={"POST pods": pods})
    bound = run.watcher.bound
    latencies = [bound[n] - created[n] for n in created if n in bound]
    times = sorted(bound[n] for n in created if n in bound)
    checked = ledger.summary()
    result.update(outcome=outcome, bound=len(times), **checked)
    if times:
        result.update(
            preemptors_per_s=round(len(times) / max(times[-1] - first_create, 1e-9), 2),
            first_bound_s=round(times[0] - first_create, 3),
            last_bound_s=round(times[-1] - first_create, 3),
            latency_p50_s=round(percentile(latencies, 50), 3),
            latency_p99_s=round(percentile(latencies, 99), 3),
            victims_per_preemptor=round(checked["victims_deleted"] / len(times), 2),
        )
    result.update(
        control_plane_cpu_seconds=round(figures.pop("control_plane_cpu_end") - cpu0, 3),
        **figures,
    )
    # A preemptor bound beside a victim is a violation even if the victim is gone by the placement check.
    result["violations"] += checked["preemption_violations"]
    result["violation_examples"] = (ledger.broken + result["violation_examples"])[:10]
    # CPU over the measured phase only, not the start-up and the init pods before it.
    result["cpu_seconds"] = round(result["cpu_seconds"] - sample0.cpu_seconds, 3)
    if outcome != "ok":
        result["log_tail"] = running.log_tail()
    return result


def prepare_idle(cluster: Cluster, pods: int, progress: Progress) -> str:
    """A namespace of `pods` bound pods (bound by the harness itself) that no contender will be asked about."""
    namespace = f"bench-idle-{suffix()}"
    cluster.create_namespace(namespace)
    progress.say(f"idle: creating and binding {pods} pods")
    cluster.create_pods([(pod_name(i), pod_bytes(i, namespace, NOBODY)) for i in range(pods)], namespace)
    bound = cluster.bind_all(namespace)
    if bound != pods:
        raise RuntimeError(f"idle setup bound {bound}/{pods} pods")
    return namespace


def run_idle(
    cluster: Cluster,
    contender: Contender,
    *,
    seconds: float,
    settle: float,
    options: Options,
    progress: Progress,
    tag: str,
) -> dict[str, Any]:
    """Everything bound, nothing pending for the contender: what it costs to keep watching, per second."""
    running = start(cluster, contender, f"bench-{contender.name}-{suffix()}", options, tag)
    try:
        end_settle = time.monotonic() + settle
        while time.monotonic() < end_settle and not running.exited():
            progress.status(f"{contender.name} settling {end_settle - time.monotonic():.0f}s")
            time.sleep(0.5)
        if running.exited():
            return {"outcome": f"exited {running.proc.returncode}", "log_tail": running.log_tail()}
        before, cpu0, sample0 = cluster.requests(), cluster.control_plane_cpu(), running.sample()
        started = time.monotonic()
        while time.monotonic() - started < seconds and not running.exited():
            progress.status(f"{contender.name} idle {time.monotonic() - started:.0f}/{seconds:.0f}s")
            time.sleep(0.5)
        # Scraped before the stop: the contender's long-running watches would otherwise be counted as they close.
        window = time.monotonic() - started
        sample1, cpu1, after = running.sample(), cluster.control_plane_cpu(), cluster.requests()
        outcome = "ok" if not running.exited() else f"exited {running.proc.returncode}"
    finally:
        running.stop()
        save_profile(options, tag)
    api = _api_figures(cluster, before, after, window, 0)
    by_kind = api["api_requests_by_kind"]
    return {
        "outcome": outcome,
        "window_s": round(window, 2),
        "cpu_ms_per_s": round(1000 * (sample1.cpu_seconds - sample0.cpu_seconds) / window, 2),
        # WATCHes are counted when they close: within a 30 s window those are the API server's own informers
        # timing out (or a contender's watch, started long before): not a per-cycle cost. Listed, not summed.
        "api_requests_per_s": round(sum(n for k, n in by_kind.items() if not k.startswith("WATCH ")) / window, 3),
        "api_requests_by_kind": api["api_requests_by_kind"],
        "control_plane_cpu_ms_per_s": round(1000 * (cpu1 - cpu0) / window, 2),
        "peak_rss_mib": round(sample1.peak_rss_mib, 1),
    }


def git_commit() -> str:
    """The commit, and which of our scheduler's files differ from it (others edit them while benchmarks run)."""
    root = Path(__file__).resolve().parents[1]

    def git(*args: str) -> str:
        try:
            out = subprocess.run(["git", *args], check=False, capture_output=True, text=True, cwd=root)
        except OSError:
            return ""
        return out.stdout

    commit = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    changed = git("status", "--porcelain", "--", "scheduler.py", "kubeapi.py", "policies").splitlines()
    if changed:
        commit += " + uncommitted changes to " + ", ".join(line[3:] for line in changed)
    return commit


def kube_version(bin_dir: Path) -> str:
    try:
        out = subprocess.run(
            [str(bin_dir / "kube-apiserver"), "--version"], check=False, capture_output=True, text=True, timeout=30
        )
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
