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
