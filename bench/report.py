"""Results of one scenario as bench/results/<scenario>.md (table), .json (everything) and .png (plot)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contenders import ANCHORS
from measure import median

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Column:
    title: str
    key: str
    digits: int = 1
    pick: Callable[[list[Any]], Any] = median  # how the reps are combined


def _max(values: list[Any]) -> Any:
    present = [v for v in values if v is not None]
    return max(present) if present else None


BATCH = (
    Column("sched pods/s", "sched_pods_per_s"),
    Column("e2e pods/s", "e2e_pods_per_s"),
    Column("bind-phase pods/s", "bind_phase_pods_per_s"),
    Column("1-s avg pods/s", "throughput_avg"),
    Column("1-s p50", "throughput_p50"),
    Column("1-s p90", "throughput_p90"),
    Column("1-s p99", "throughput_p99"),
    Column("1st bind s", "first_bind_s", 2),
    Column("bind p50 s", "bind_p50_s", 2),
    Column("bind p99 s", "bind_p99_s", 2),
    Column("CPU s", "cpu_seconds", 2),
    Column("peak RSS MiB", "peak_rss_mib", 0),
    Column("API req", "api_requests", 0),
    Column("req/pod", "api_requests_per_pod", 2),
    Column("ctl-plane CPU s", "control_plane_cpu_seconds", 1),
    Column("spread sd %", "spread_stdev_pct", 2),
    Column("violations", "violations", 0, _max),
)
STEADY = (
    Column("pods/s", "pods_per_s", 2),
    Column("latency p50 s", "latency_p50_s", 3),
    Column("latency p99 s", "latency_p99_s", 3),
    Column("latency max s", "latency_max_s", 3),
    Column("CPU s", "cpu_seconds", 2),
    Column("peak RSS MiB", "peak_rss_mib", 0),
    Column("API req", "api_requests", 0),
    Column("req/pod", "api_requests_per_pod", 2),
    Column("ctl-plane CPU s", "control_plane_cpu_seconds", 1),
    Column("violations", "violations", 0, _max),
)
IDLE = (
    Column("CPU ms/s", "cpu_ms_per_s", 1),
    Column("API req/s (no WATCH)", "api_requests_per_s", 2),
    Column("ctl-plane CPU ms/s", "control_plane_cpu_ms_per_s", 1),
    Column("peak RSS MiB", "peak_rss_mib", 0),
)
PREEMPTION = (
    Column("preemptors/s", "preemptors_per_s", 2),
    Column("1st bound s", "first_bound_s", 2),
    Column("last bound s", "last_bound_s", 2),
    Column("latency p50 s", "latency_p50_s", 2),
    Column("latency p99 s", "latency_p99_s", 2),
    Column("victims", "victims_deleted", 0),
    Column("victims/preemptor", "victims_per_preemptor", 2),
    Column("init s", "init_seconds", 1),
    Column("CPU s", "cpu_seconds", 2),
    Column("peak RSS MiB", "peak_rss_mib", 0),
    Column("API req", "api_requests", 0),
    Column("req/preemptor", "api_requests_per_pod", 1),
    Column("ctl-plane CPU s", "control_plane_cpu_seconds", 1),
    Column("violations", "violations", 0, _max),
)
COLUMNS = {"batch": BATCH, "steady": STEADY, "idle": IDLE, "preemption": PREEMPTION}
# The figure each kind of scenario compares against the anchors, and whether higher is better.
RATIO = {
    "batch": ("sched_pods_per_s", "throughput ÷ anchor's (higher is better)"),
    "steady": ("latency_p99_s", "p99 latency ÷ anchor's (lower is better)"),
    "idle": ("cpu_ms_per_s", "idle CPU ÷ anchor's (lower is better)"),
    "preemption": ("preemptors_per_s", "preemptors bound per second ÷ anchor's (higher is better)"),
}
SHORT = {
    "kube-scheduler-qps5000": "ks-qps5000",
    "kube-scheduler-default": "ks-default",
    "raw-limit": "raw-limit",
    "raw-limit-events": "raw-events",
}


def summarise(kind: str, runs: dict[str, list[Row]]) -> dict[str, Row]:
    """Per contender: each column combined over the reps (median; violations: the worst), plus outcomes."""
    summary = {}
    for name, reps in runs.items():
        row: Row = {c.key: c.pick([r.get(c.key) for r in reps]) for c in COLUMNS[kind]}
        row["reps"] = len(reps)
        row["outcomes"] = [r.get("outcome", "?") for r in reps]
        row["bound_min"] = min((r.get("bound", 0) for r in reps), default=0)
        row["pods"] = reps[0].get("pods") if reps else None
        summary[name] = row
    key = RATIO[kind][0]
    for row in summary.values():
        for anchor in ANCHORS:
            base = summary.get(anchor, {}).get(key)
            value = row.get(key)
            row[f"ratio_{anchor}"] = value / base if value is not None and base else None
    return summary


def _cell(value: Any, digits: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float | int) and digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def _status(row: Row) -> str:
    bad = [o for o in row["outcomes"] if o != "ok"]
    if not bad:
        return "ok"
    return f"{bad[0]} ({len(bad)}/{len(row['outcomes'])})"


def markdown(result: dict[str, Any]) -> str:
    scenario, env, summary = result["scenario"], result["environment"], result["summary"]
    kind = scenario["kind"]
    anchors = [a for a in ANCHORS if a in summary]
    lines = [
        f"# Benchmark `{scenario['name']}`: {scenario['description']}",
        "",
        f"- when: {env['started_utc']} (UTC), commit `{env['commit']}`, {env['kube_version']}, "
        f"Python {env['python']}, kubernetes client {env['kubernetes_client']}",
        f"- machine: {env['cpus']} CPUs, load average at start {env['load_start']}, at end {env['load_end']} "
        "— shared with other engineers' tests, so absolute figures are noisy; the ratios within one run are "
        "the comparable part",
        f"- reps: {scenario['reps']} per contender, medians shown (violations: the worst rep); "
        f"per-run timeout {scenario['timeout_s']:.0f} s (naive: {scenario['naive_timeout_s']:.0f} s)",
        f"- API server background (measured with no scheduler before the runs): "
        f"{env['background_requests_per_s']:.2f} req/s, subtracted from the request counts; "
        f"{env['background_control_plane_cpu_ms_per_s']:.0f} ms/s control-plane CPU (not subtracted)",
        "",
    ]
    header = ["contender", "outcome"]
    if kind != "idle":
        header.append("bound")
    header += [c.title for c in COLUMNS[kind]] + [f"÷ {SHORT[a]}" for a in anchors]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|")
    for name, row in summary.items():
        cells = [f"`{name}`", _status(row)]
        if kind != "idle":
            cells.append(f"{row['bound_min']:,}/{row['pods']:,}" if row.get("pods") else "-")
        cells += [_cell(row.get(c.key), c.digits) for c in COLUMNS[kind]]
        cells += [_cell(row.get(f"ratio_{a}"), 2) for a in anchors]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Ratio columns: {RATIO[kind][1]}, medians of this run.", "", *LEGEND[kind], ""]
    lines += ["## API requests by kind (first rep)", ""]
    for name, reps in result["runs"].items():
        kinds = reps[0].get("api_requests_by_kind", {}) if reps else {}
        top = ", ".join(f"{k} {v:,}" for k, v in list(kinds.items())[:8])
        lines.append(f"- `{name}`: {top or '-'}")
    failures = [(n, r) for n, reps in result["runs"].items() for r in reps if r.get("outcome") != "ok"]
    if failures:
        lines += ["", "## Runs that did not finish", ""]
        for name, run in failures:
            lines.append(f"- `{name}`: {run.get('outcome')}, {run.get('bound', '?')}/{run.get('pods', '?')} bound")
    return "\n".join(lines) + "\n"


LEGEND = {
    "batch": [
        "- **sched pods/s**: pods bound ÷ (last bind - contender start): the scheduling throughput, start-up "
        "included; all pods were created before the contender started.",
        "- **e2e pods/s**: pods bound ÷ (last bind - first create): the issue's definition, pod creation "
        "(16 threads) included.",
        "- **bind-phase pods/s**: (pods - 1) ÷ (last bind - first bind): throughput without start-up.",
        "- **1-s avg / p50 / p90 / p99**: kube's scheduler_perf `SchedulingThroughput`: pods bound in each 1 s "
        "sample from contender start (the harness's watch), the first sample that sees a bind skipped, empty "
        "seconds folded into the next sample; average and nearest-rank percentiles of the samples (`-`: the "
        "run took under 2 s, too short for a sample).",
        "- **1st bind / bind p50 / p99**: seconds from contender start until the first, median, 99th-percentile "
        "pod was seen bound (the harness's watch).",
        "- **CPU s / peak RSS**: the contender's process (user+system, until the last bind; VmHWM).",
        "- **API req**: the API server's `apiserver_request_total` delta over the run, less its own background.",
        "- **ctl-plane CPU s**: kube-apiserver + etcd CPU during the run.",
        "- **spread sd %**: standard deviation over nodes of requested CPU ÷ allocatable, in percentage points.",
        "- **violations**: bound pods breaking a taint, a nodeSelector, required node affinity, required pod "
        "anti-affinity, a DoNotSchedule topology spread constraint, or a node's capacity (must be 0).",
        "- a timed-out run reports the rate of the pods it did bind.",
    ],
    "steady": [
        "- pods arrive at a fixed rate while the contender runs (warmed up by one pod first); **latency** is "
        "from the create call's return to the harness's watch seeing the pod bound (client clocks; the "
        "server's timestamps have 1 s resolution).",
        "- **pods/s**: pods bound ÷ (last bind - first arrival); **CPU s**: during the arrivals and drain only.",
        "- raw-limit is not run here: it binds what is pending once and exits.",
    ],
    "idle": [
        "- every pod bound, nothing pending; after a settle period, the contender's cost over a fixed window: "
        "**CPU ms/s** (for ours-poll, one cycle is one second, so this is ms per cycle), **API req/s** (the "
        "`apiserver_request_total` delta less the API server's background, scraped before stopping; WATCH "
        "requests are left out: the server counts them when they close, and those closing in the window are "
        "its own informers timing out, see the breakdown), **ctl-plane CPU ms/s** (kube-apiserver + etcd, all of it: "
        "compare with the `(no scheduler)` row, the same window with no scheduler running).",
        "- raw-limit is not run here.",
    ],
    "preemption": [
        "- kube's scheduler_perf `PreemptionBasic`: 4-CPU nodes; the contender starts and binds the low-priority "
        "pods (900m / 500Mi, four fill a node), then the preemptors (3970m / 500Mi, a PriorityClass of value "
        "9999999) are created (16 threads) while it runs: each fits only where all four low pods are evicted. "
        "All pods have `terminationGracePeriodSeconds: 0` (no kubelet).",
        "- **preemptors/s**: preemptors bound ÷ (last preemptor bound - first preemptor created); **1st / last "
        "bound s**: seconds from the first create; **latency**: each preemptor's create → seen bound.",
        "- **victims**: low-priority pods deleted (expected: 4 per preemptor, so **victims/preemptor** 4.00).",
        "- **init s**: contender start → all low-priority pods bound (their creation included); not measured "
        "otherwise: CPU s, API req and ctl-plane CPU s cover the preemptors only (after a pause until the "
        "contender's binds and events for the low pods have stopped).",
        "- **violations**: placement violations after the run, plus every preemptor the API server bound while a "
        "low-priority pod was still on its node (seen in the order of one watch of the namespace); must be 0.",
        "- raw-limit and naive are not run here: they do not preempt.",
    ],
}


def plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kind, summary, runs = result["scenario"]["kind"], result["summary"], result["runs"]
    names = list(summary)
    # Tick labels say when a contender did not finish: its figures cover only the pods it bound.
    labels = [n if _status(summary[n]) == "ok" else f"{n}\n({_status(summary[n]).split(' ')[0]})" for n in names]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.2))
    if kind == "batch":
        _bars(
            left,
            names,
            runs,
            "sched_pods_per_s",
            "scheduling throughput (pods/s, start → last bind)",
            second="e2e_pods_per_s",
        )
        _pair(right, names, summary, ("bind_p50_s", "bind_p99_s"), "seconds from start until p50 / p99 pod bound")
    elif kind == "preemption":
        _bars(left, names, runs, "preemptors_per_s", "preemptors bound per second (first create → last bound)")
        _pair(right, names, summary, ("latency_p50_s", "latency_p99_s"), "preemptor create → bound p50 / p99 (s)")
    elif kind == "steady":
        _bars(left, names, runs, "pods_per_s", "achieved pods/s")
        _pair(right, names, summary, ("latency_p50_s", "latency_p99_s"), "create → bound latency p50 / p99 (s)")
    else:
        _bars(left, names, runs, "cpu_ms_per_s", "idle CPU (ms per second)")
        _bars(right, names, runs, "api_requests_per_s", "idle API requests per second")
    scenario = result["scenario"]
    reps = "1 rep" if scenario["reps"] == 1 else f"medians of {scenario['reps']} reps"
    fig.suptitle(f"{scenario['name']}: {scenario['description']} ({reps})")
    for ax in (left, right):
        ax.set_xticks(range(len(names)), labels, rotation=25, ha="right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _values(runs: Sequence[Row], key: str) -> list[float]:
    return [r[key] for r in runs if r.get(key) is not None]


def _bars(
    ax: Any, names: list[str], runs: dict[str, list[Row]], key: str, title: str, *, second: str | None = None
) -> None:
    x = list(range(len(names)))
    medians = [median(_values(runs[n], key)) or 0.0 for n in names]
    low = [m - min(_values(runs[n], key), default=m) for n, m in zip(names, medians, strict=True)]
    high = [max(_values(runs[n], key), default=m) - m for n, m in zip(names, medians, strict=True)]
    width = 0.4 if second else 0.7
    ax.bar([i - (width / 2 if second else 0) for i in x], medians, width, yerr=[low, high], capsize=3,
           color="#3b75af", label=key)  # fmt: skip
    if second:
        ax.bar([i + width / 2 for i in x], [median(_values(runs[n], second)) or 0.0 for n in names], width,
               color="#a6c5e3", label=second)  # fmt: skip
        ax.legend(fontsize=8)
    for i, m in enumerate(medians):
        ax.annotate(f"{m:,.1f}", (i - (width / 2 if second else 0), m), ha="center", va="bottom", fontsize=8)
    positive = [m for m in medians if m > 0]
    if positive and max(positive) / min(positive) > 50:
        ax.set_yscale("log")
    ax.set_xticks(x, names, rotation=25, ha="right", fontsize=8)
    ax.set_title(title, fontsize=10)


def _pair(ax: Any, names: list[str], summary: dict[str, Row], keys: tuple[str, str], title: str) -> None:
    x = list(range(len(names)))
    values = []
    for offset, key, color in ((-0.2, keys[0], "#e07b39"), (0.2, keys[1], "#b33b3b")):
        heights = [summary[n].get(key) or 0.0 for n in names]
        values += heights
        ax.bar([i + offset for i in x], heights, 0.4, color=color, label=key)
        for i, h in enumerate(heights):
            ax.annotate(f"{h:.3g}", (i + offset, h), ha="center", va="bottom", fontsize=7)
    positive = [v for v in values if v > 0]
    if positive and max(positive) / min(positive) > 50:
        ax.set_yscale("log")
    ax.set_xticks(x, names, rotation=25, ha="right", fontsize=8)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)


def write(result: dict[str, Any], directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    name = result["scenario"]["name"]
    text = markdown(result)
    (directory / f"{name}.md").write_text(text)
    (directory / f"{name}.json").write_text(json.dumps(result, indent=1, sort_keys=False) + "\n")
    plot(result, directory / f"{name}.png")
    return directory / f"{name}.md"


if __name__ == "__main__":
    # Re-render the table and plot of a saved run: python bench/report.py bench/results/quick.json
    import sys

    for name in sys.argv[1:]:
        saved = json.loads(Path(name).read_text())
        print(write(saved, Path(name).parent))
