"""Numbers from raw observations: percentiles, API request counts from the API server's /metrics, and a
process's CPU time and peak memory from /proc (Linux). No network here; the callers fetch."""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# One time series of the counter, e.g.
# apiserver_request_total{code="201",component="apiserver",...,resource="pods",...,verb="POST",version="v1"} 42
_SERIES = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$", re.MULTILINE)
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return math.nan
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Iterable[float | None]) -> float | None:
    """The median of the values that exist (None and NaN are skipped); None if there are none."""
    present = [v for v in values if v is not None and not math.isnan(v)]
    return percentile(present, 50) if present else None


# --- throughput the way kube's scheduler_perf samples it -------------------------------------------------


def throughput_samples(bind_times: Sequence[float], origin: float, interval: float = 1.0) -> list[float]:
    """Pods bound per second, one sample per `interval` tick from `origin`, as scheduler_perf's
    throughputCollector (test/integration/scheduler_perf/util.go, throughputSampleInterval = 1 s) takes them
    from its pod informer: ticks before the first bind give nothing; the first tick that sees a bind only
    starts the count (its sample would be an outlier); a tick with no new bind is skipped and the next sample,
    over the longer span, is recorded once per interval spanned, so percentiles stay time-weighted. Ticks run
    up to the first one that sees every pod bound (scheduler_perf stops collecting once its 1 s poll sees
    them all, so whether it takes that last tick depends on the phase of the two; here it always does)."""
    times = sorted(bind_times)
    if not times:
        return []
    samples: list[float] = []
    ticks = max(1, math.ceil((times[-1] - origin) / interval))
    seen = 0  # binds up to the current tick
    last_count, last_tick, started, skipped = 0, 0.0, False, 0
    for k in range(1, ticks + 1):
        tick = origin + k * interval
        while seen < len(times) and times[seen] <= tick:
            seen += 1
        if seen == 0:
            continue
        if not started:
            started, last_count, last_tick = True, seen, tick
            continue
        new = seen - last_count
        if new == 0:
            skipped += 1
            continue
        samples += [new / (tick - last_tick)] * (skipped + 1)
        last_count, last_tick, skipped = seen, tick, 0
    return samples


def sample_summary(samples: Sequence[float]) -> dict[str, float] | None:
    """scheduler_perf's SchedulingThroughput data item: Average and the nearest-rank percentiles it computes
    (sorted[ceil(n·p/100) - 1]); None without samples (kube then warns: too short to measure)."""
    if not samples:
        return None
    ordered = sorted(samples)

    def rank(p: int) -> float:
        return ordered[math.ceil(len(ordered) * p / 100) - 1]

    return {"average": sum(ordered) / len(ordered), "p50": rank(50), "p90": rank(90), "p95": rank(95), "p99": rank(99)}


# --- API request counts --------------------------------------------------------------------------------


def request_key(labels: Mapping[str, str]) -> str:
    """`VERB group/resource/subresource`, e.g. `POST pods/binding`, `LIST pods`, `GET /readyz`."""
    resource = labels.get("resource", "")
    if not resource:  # non-resource URLs (/readyz, /api, /openapi/v3) carry the path in `subresource`
        path = labels.get("subresource", "")
        return f"{labels.get('verb', '?')} {path if path.startswith('/') else '/' + path}"
    group = labels.get("group", "")
    name = f"{group}/{resource}" if group else resource
    if labels.get("subresource"):
        name += "/" + labels["subresource"]
    return f"{labels.get('verb', '?')} {name}"


def request_totals(metrics_text: str) -> Counter[str]:
    """`apiserver_request_total` summed over response codes and scopes, by request_key."""
    totals: Counter[str] = Counter()
    for match in _SERIES.finditer(metrics_text):
        labels = dict(_LABEL.findall(match["labels"]))
        totals[request_key(labels)] += int(float(match["value"]))
    return totals


def request_delta(
    before: Mapping[str, int],
    after: Mapping[str, int],
    *,
    background_per_second: Mapping[str, float] | None = None,
    seconds: float = 0.0,
) -> Counter[str]:
    """Requests made between two scrapes, less what the API server does on its own in that time (measured
    beforehand on the idle cluster as a rate per key). Negative remainders are noise and dropped."""
    background = background_per_second or {}
    delta: Counter[str] = Counter()
    for key in set(before) | set(after):
        count = after.get(key, 0) - before.get(key, 0) - background.get(key, 0.0) * seconds
        if round(count) > 0:
            delta[key] = round(count)
    return delta


# --- a process's CPU and memory -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProcSample:
    cpu_seconds: float  # user + system, the process and its descendants (live and reaped)
    peak_rss_mib: float  # VmHWM, the largest of the process tree


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            found.extend(int(c) for c in task.read_text().split())
        except OSError:
            continue
    return found


def _cpu_and_peak(pid: int) -> tuple[float, float]:
    stat = Path(f"/proc/{pid}/stat").read_text()
    # Fields after the command (which may contain spaces): utime, stime, cutime, cstime are 14..17.
    fields = stat[stat.rindex(")") + 2 :].split()
    cpu = sum(int(f) for f in fields[11:15]) / CLOCK_TICKS
    peak = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) / 1024
    return cpu, peak


def proc_sample(pid: int) -> ProcSample:
    """CPU seconds and peak RSS of a live process and all its descendants."""
    cpu, peak = 0.0, 0.0
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            c, p = _cpu_and_peak(current)
        except (OSError, ValueError):
            continue  # it exited meanwhile
        cpu += c
        peak = max(peak, p)
        stack.extend(children(current))
    return ProcSample(cpu, peak)
