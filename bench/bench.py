"""Benchmarks side by side with kube-scheduler, on one local control plane this script starts and stops.

    python bench/bench.py                                  # the default set: quick, headline, steady, idle, preemption
    python bench/bench.py --scenario quick --reps 3
    python bench/bench.py --scenario scale                 # opt-in: 5,000 nodes / 50,000 pods
    python bench/bench.py --scenario idle --idle-nodes 5000 --idle-pods 50000
    python bench/bench.py --scenario steady-scale --contenders ours-poll,ours-watch,kube-scheduler-qps5000
    python bench/bench.py --scenario tiny --contenders ours-poll,raw-limit
    python bench/bench.py --scenario preemption --preemption-nodes 1000   # scheduler_perf's PreemptionBasic size
    python bench/bench.py --scenario perf --contenders ours-poll,kube-scheduler-qps5000,raw-limit,raw-limit-events
    python bench/bench.py --scenario sched-basic --perf-nodes 100      # scheduler_perf's workload, a 50th

Each contender runs alone, in turn, in a fresh namespace under its own schedulerName, against the same nodes
and the same pod specs. Results go to bench/results/<scenario>.{md,json,png}; see bench/README.md.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes
import report
from contenders import CONTENDERS, ROOT, Contender, Running
from harness import (
    Cluster,
    Options,
    Progress,
    git_commit,
    kube_version,
    prepare_idle,
    run_batch,
    run_idle,
    run_preemption,
    run_steady,
    suffix,
)
from rawkube import RawKube
from workload import (
    BENCH_SHAPE,
    LOW_PER_NODE,
    PERF_NODES,
    PERF_WORKLOADS,
    PerfWorkload,
    node_body,
    perf_node_body,
)

sys.path.insert(0, str(ROOT / "hack"))
import local_cluster

RESULTS = ROOT / "bench" / "results"


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    kind: str  # batch | steady | idle | preemption
    nodes: int
    pods: int
    reps: int  # default repetitions (--reps overrides)
    description: str
    bound: int = 0  # pods bound by the harness before the contenders run (the load they must keep track of)
    init_pods: int = 0  # preemption: low-priority pods each contender binds itself before the measured phase;
    # a scheduler_perf workload: its init pods, created and bound by the harness before each contender's run
    perf: PerfWorkload | None = None

    @property
    def shape(self) -> str:
        return self.perf.shape if self.perf else BENCH_SHAPE

    def node_body(self) -> Callable[[int], dict[str, Any]]:
        perf = self.perf
        return node_body if perf is None else lambda i: perf_node_body(i, perf.zones)


def perf_scenario(name: str, workload: PerfWorkload, nodes: int) -> Scenario:
    init, measured = workload.sizes(nodes)
    size = "" if nodes == PERF_NODES else f" scaled to {nodes:,} nodes"
    return Scenario(
        name, "batch", nodes, measured, 1,
        f"kube scheduler_perf {workload.name}{size}: {nodes:,} nodes, {init:,} init pods bound first, "
        f"{measured:,} measured pods", init_pods=init, perf=workload,
    )  # fmt: skip


def scenarios(args: argparse.Namespace) -> dict[str, Scenario]:
    steady_pods = round(args.steady_rate * args.steady_seconds)
    return {
        s.name: s
        for s in (
            Scenario("tiny", "batch", 10, 100, 1, "10 nodes, 100 pods created up front (smoke test)"),
            Scenario("quick", "batch", 100, 1000, 3, "100 nodes, 1,000 pods created up front"),
            Scenario("steady", "steady", 100, steady_pods, 1,
                     f"100 nodes, {args.steady_rate:g} pods/s arriving for {args.steady_seconds:g} s"),
            Scenario("headline", "batch", 1000, 5000, 1, "1,000 nodes, 5,000 pods created up front"),
            Scenario("idle", "idle", args.idle_nodes, args.idle_pods, 1,
                     f"{args.idle_nodes:,} nodes, {args.idle_pods:,} pods all bound, nothing pending; "
                     f"{args.idle_seconds:g} s window", bound=args.idle_pods),
            Scenario("scale", "batch", 5000, 50000, 1, "5,000 nodes, 50,000 pods created up front"),
            Scenario("steady-scale", "steady", 5000, steady_pods, 1,
                     f"5,000 nodes carrying 50,000 bound pods, {args.steady_rate:g} pods/s arriving for "
                     f"{args.steady_seconds:g} s", bound=50000),
            Scenario("preemption", "preemption", args.preemption_nodes, args.preemption_pods, 1,
                     f"{args.preemption_nodes:,} nodes filled by {args.preemption_init_pods:,} low-priority pods "
                     f"(900m), then {args.preemption_pods:,} preemptors (3970m) each evicting the 4 of one node",
                     init_pods=args.preemption_init_pods),
            *(perf_scenario(name, workload, args.perf_nodes) for name, workload in PERF_WORKLOADS.items()),
        )
    }  # fmt: skip


# preemption at its default size takes ~75 s for all four contenders here, so it is in the default set.
DEFAULT_SET = ("quick", "steady", "headline", "idle", "preemption")
PERF_SET = tuple(PERF_WORKLOADS)
OPT_IN = ("scale", "steady-scale", *PERF_SET)
# raw-limit binds once and exits; naive and raw-limit do not preempt; naive knows neither node nor pod affinity
# nor spread constraints (and needs hours at 5,000 nodes).
RAW = {"raw-limit", "raw-limit-events"}
NOT_IN = {"steady": RAW, "idle": RAW, "preemption": {*RAW, "naive"}, **{name: {"naive"} for name in PERF_SET}}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--scenario",
        default="default",
        help="comma list of tiny, quick, headline, steady, idle, scale, steady-scale, preemption, "
        f"{', '.join(PERF_SET)}; 'default' (quick, steady, headline, idle, preemption), 'perf' (kube "
        "scheduler_perf's workloads) or 'all' (default + scale, steady-scale, perf)",
    )
    parser.add_argument("--reps", type=int, help="repetitions per contender (default: 3 for quick, 1 else)")
    available = [
        n for n, c in CONTENDERS.items() if not c.opt_in and (not c.checkout_env or os.environ.get(c.checkout_env))
    ]
    parser.add_argument("--contenders", default=",".join(available), help=f"comma list of {', '.join(CONTENDERS)}")
    parser.add_argument("--timeout", type=float, default=600, help="seconds before a run is given up (default 600)")
    parser.add_argument(
        "--naive-timeout", type=float, default=30, help="the same for naive, which needs hours at scale (default 30)"
    )
    parser.add_argument("--steady-rate", type=float, default=10.0, help="pods per second (default 10)")
    parser.add_argument("--steady-seconds", type=float, default=30.0, help="arrival window (default 30)")
    parser.add_argument("--idle-nodes", type=int, default=1000, help="idle scenario's nodes (default 1,000)")
    parser.add_argument("--idle-pods", type=int, default=5000, help="idle scenario's bound pods (default 5,000)")
    parser.add_argument("--idle-seconds", type=float, default=30.0, help="measured idle window (default 30)")
    parser.add_argument("--idle-settle", type=float, default=10.0, help="start-up time left out (default 10)")
    parser.add_argument(
        "--preemption-nodes", type=int, default=100, help="preemption scenario's nodes (default 100; kube: 1,000)"
    )
    parser.add_argument(
        "--preemption-init-pods", type=int, help="its low-priority pods, at most 4 per node (default: 4 per node)"
    )
    parser.add_argument("--preemption-pods", type=int, help="its preemptors, at most 1 per node (default: 1 per node)")
    parser.add_argument(
        "--perf-nodes",
        type=int,
        default=PERF_NODES,
        help=f"nodes of the scheduler_perf scenarios, their pods scaled alike (default {PERF_NODES:,}, kube's size)",
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="output folder (default bench/results)")
    parser.add_argument(
        "--cluster-dir", type=Path, help="use (and keep) the control plane in this folder instead of a temporary one"
    )
    parser.add_argument(
        "--profile", action="store_true", help="run our scheduler under py-spy; profiles go next to the results"
    )
    args = parser.parse_args(argv)
    if args.preemption_init_pods is None:
        args.preemption_init_pods = LOW_PER_NODE * args.preemption_nodes
    if args.preemption_pods is None:
        args.preemption_pods = args.preemption_nodes
    if args.preemption_init_pods > LOW_PER_NODE * args.preemption_nodes:
        parser.error(f"--preemption-init-pods: at most {LOW_PER_NODE} low-priority pods fit on a node")
    if args.preemption_pods > args.preemption_nodes:
        parser.error("--preemption-pods: at most one preemptor fits on a node")
    known = scenarios(args)
    names: list[str] = []
    for word in (w.strip() for w in args.scenario.split(",")):
        groups = {"default": DEFAULT_SET, "all": (*DEFAULT_SET, *OPT_IN), "perf": PERF_SET}
        expanded = groups.get(word, (word,))
        for name in expanded:
            if name not in known:
                parser.error(f"unknown scenario {name!r}; choose from {', '.join(known)}, default, all")
            if name not in names:
                names.append(name)
    if args.perf_nodes < 1:
        parser.error("--perf-nodes must be at least 1")
    # Nodes only grow; scenarios with the same node shape run together (another shape replaces the nodes).
    args.scenarios = sorted((known[n] for n in names), key=lambda s: (s.nodes, s.shape != BENCH_SHAPE, s.shape, s.pods))
    args.contender_list = [c.strip() for c in args.contenders.split(",") if c.strip()]
    for name in args.contender_list:
        if name not in CONTENDERS:
            parser.error(f"unknown contender {name!r}; choose from {', '.join(CONTENDERS)}")
    if args.profile and not shutil.which("py-spy"):
        parser.error("--profile needs py-spy (pip install -r requirements-dev.txt)")
    return args


def run_scenario(
    cluster: Cluster, scenario: Scenario, args: argparse.Namespace, options: Options, progress: Progress
) -> dict[str, Any]:
    reps = args.reps or scenario.reps
    left_out = NOT_IN.get(scenario.kind, set()) | NOT_IN.get(scenario.name, set())
    names = [n for n in args.contender_list if n not in left_out]
    load_start = os.getloadavg()
    started_utc = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M")
    node_seconds = cluster.ensure_nodes(scenario.nodes, progress, scenario.node_body())
    progress.say(f"nodes ready in {node_seconds:.1f} s")
    runs: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    idle_namespace = prepare_idle(cluster, scenario.bound, progress) if scenario.bound else None
    # The API server's own requests and CPU, on this scenario's cluster, with no scheduler running.
    quiet = args.idle_seconds if scenario.kind == "idle" else 10.0
    progress.say(f"measuring the API server's background ({quiet:.0f} s)")
    cluster.measure_background(quiet)
    if scenario.kind == "idle":
        runs = {NO_SCHEDULER: [idle_baseline(cluster, quiet)], **runs}
    try:
        # Reps outermost, so slow drift of the shared machine spreads over every contender alike.
        for rep in range(1, reps + 1):
            for name in names:
                progress.prefix = f"[{scenario.name} rep {rep}/{reps}]"
                runs[name].append(
                    run_one(cluster, scenario, CONTENDERS[name], rep=rep, args=args, options=options, progress=progress)
                )
                progress.say(f"{name}: {brief(runs[name][-1])}")
    finally:
        if idle_namespace:
            cluster.delete_pods(idle_namespace)
    result = {
        "scenario": {
            "name": scenario.name,
            "kind": scenario.kind,
            "description": scenario.description,
            "nodes": scenario.nodes,
            "pods": scenario.pods,
            "reps": reps,
            "timeout_s": args.timeout,
            "naive_timeout_s": args.naive_timeout,
            **({"rate": args.steady_rate, "seconds": args.steady_seconds} if scenario.kind == "steady" else {}),
            **({"window_s": args.idle_seconds, "settle_s": args.idle_settle} if scenario.kind == "idle" else {}),
            **({"init_pods": scenario.init_pods} if scenario.kind == "preemption" or scenario.perf else {}),
            **perf_fields(scenario),
        },
        "environment": {
            "started_utc": started_utc,
            "commit": git_commit(),
            "kube_version": kube_version(cluster.bin_dir),
            "python": platform.python_version(),
            "kubernetes_client": kubernetes.__version__,
            "cpus": os.cpu_count(),
            "load_start": " ".join(f"{x:.2f}" for x in load_start),
            "load_end": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            "background_requests_per_s": sum(cluster.background.values()),
            "background_control_plane_cpu_ms_per_s": 1000 * cluster.background_cpu,
            "node_setup_seconds": round(node_seconds, 1),
        },
        "summary": report.summarise(scenario.kind, runs),
        "runs": runs,
    }
    return result


def perf_fields(scenario: Scenario) -> dict[str, Any]:
    if scenario.perf is None:
        return {}
    return {"scheduler_perf": scenario.perf.name, "threshold_pods_per_s": scenario.perf.threshold}


NO_SCHEDULER = "(no scheduler)"


def idle_baseline(cluster: Cluster, seconds: float) -> dict[str, Any]:
    """The idle control plane itself, for comparison with the contenders' idle rows."""
    return {
        "outcome": "ok",
        "window_s": seconds,
        "api_requests_per_s": round(sum(v for k, v in cluster.background.items() if not k.startswith("WATCH ")), 3),
        "api_requests_by_kind": {k: round(v * seconds) for k, v in cluster.background.items() if round(v * seconds)},
        "control_plane_cpu_ms_per_s": round(1000 * cluster.background_cpu, 2),
    }


def run_one(
    cluster: Cluster,
    scenario: Scenario,
    contender: Contender,
    *,
    rep: int,
    args: argparse.Namespace,
    options: Options,
    progress: Progress,
) -> dict[str, Any]:
    tag = f"{scenario.name}-{contender.name}-r{rep}-{suffix(4)}"
    try:
        if scenario.kind == "batch":
            return run_batch(
                cluster,
                contender,
                scenario.pods,
                options=options,
                progress=progress,
                tag=tag,
                perf=scenario.perf,
                init_pods=scenario.init_pods,
            )
        if scenario.kind == "steady":
            return run_steady(
                cluster,
                contender,
                rate=args.steady_rate,
                seconds=args.steady_seconds,
                options=options,
                progress=progress,
                tag=tag,
            )
        if scenario.kind == "preemption":
            return run_preemption(
                cluster,
                contender,
                init_pods=scenario.init_pods,
                pods=scenario.pods,
                options=options,
                progress=progress,
                tag=tag,
            )
        return run_idle(
            cluster,
            contender,
            seconds=args.idle_seconds,
            settle=args.idle_settle,
            options=options,
            progress=progress,
            tag=tag,
        )
    except Exception as e:  # noqa: BLE001 — one broken run must not lose the others' results
        progress.say(f"{contender.name}: run failed: {e!r}")
        return {"outcome": f"error: {e!r}"[:200], "pods": scenario.pods, "bound": 0}


def brief(run: dict[str, Any]) -> str:
    keys = ("outcome", "bound", "sched_pods_per_s", "preemptors_per_s", "victims_deleted", "latency_p99_s",
            "cpu_ms_per_s", "cpu_seconds", "api_requests")  # fmt: skip
    return ", ".join(f"{k}={run[k]}" for k in keys if k in run)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.profile:  # profiled runs are slower: never let them overwrite the real results
        args.results = args.results / "profile"
        args.results.mkdir(parents=True, exist_ok=True)
    progress = Progress()
    bin_dir = local_cluster.bin_dir()
    workdir = Path(tempfile.mkdtemp(prefix="my-scheduler-bench-"))
    cluster_dir = args.cluster_dir or workdir / "cluster"
    options = Options(args.timeout, args.naive_timeout, workdir, args.results if args.profile else None)
    began = time.monotonic()
    # SIGTERM as Ctrl-C: unwind through the finally below, so contenders and the cluster never outlive us.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    progress.say(f"work folder {workdir}; starting the control plane")
    try:
        # A failed start (say, a free port taken meanwhile) is shown and tried once more.
        kubeconfig = local_cluster.start_cluster(cluster_dir, attempts=2)
        cluster = Cluster(cluster_dir, kubeconfig, bin_dir, RawKube(kubeconfig, pool_size=32))
        for scenario in args.scenarios:
            progress.prefix = f"[{scenario.name}]"
            result = run_scenario(cluster, scenario, args, options, progress)
            path = report.write(result, args.results)
            progress.prefix = ""
            progress.say(f"wrote {path}")
            print(report.markdown(result), flush=True)
    finally:
        Running.stop_all()
        if args.cluster_dir is None:
            local_cluster.stop_cluster(cluster_dir)
            shutil.rmtree(workdir, ignore_errors=True)
        progress.say(f"done in {time.monotonic() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
