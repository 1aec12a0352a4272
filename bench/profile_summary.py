"""Summarise a py-spy profile (`py-spy record --format raw`: one `frame;frame;…;leaf count` line per stack,
root first) as markdown: where the time goes by category, and the top functions by self and total samples.

    python bench/profile_summary.py bench/results/headline-ours-poll-r1-xxxx.pyspy.txt [--top 20]

bench.py --profile writes the raw file and this summary next to the results.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

# First matching rule wins, checked against the whole stack (frames name functions of scheduler.py, kubeapi.py
# and policies/): the order puts "why" (bind, events, filters, scores) before "how" (models, JSON, HTTP), so
# HTTPS inside a bind counts as binding and a model attribute read inside a filter counts as filtering.
CATEGORIES = (
    ("start-up: imports", ("_find_and_load",)),
    ("bind: Api.bind (client call, argument validation, HTTPS)", ("Api.bind (",)),
    ("events: Api.event", ("Api.event (",)),
    ("pod condition: Api.mark_unschedulable", ("Api.mark_unschedulable (",)),
    ("decide: filters (run_filters, _passes)", ("run_filters (", "_passes (", ".filter (")),
    ("decide: scores (run_scores)", ("run_scores (",)),
    ("decide: snapshot, NodeInfo, requests", ("snapshot (", "add_pod (", "NodeInfo", "policies/resources.py")),
    ("decide: the rest of schedule()", ("schedule (policies/algorithm.py", "schedule (policies/framework.py")),
    ("list: model deserialisation", ("from_dict (", "model_validate (", "_models (")),
    ("list: HTTP + JSON", ("_list (", "json/decoder.py")),
    ("watch mode: Watcher", ("Watcher.",)),
    ("logging (the log line and its lock)", ("logging/",)),
    ("worker threads between tasks (futures; mostly waiting for the GIL)", ("futures/thread.py",)),
    ("policies: other", ("policies/",)),
)
_LINE = re.compile(r"^(?P<stack>.*) (?P<count>\d+)$")
_FRAME_LINE = re.compile(r":\d+\)$")


def parse(text: str) -> list[tuple[list[str], int]]:
    stacks = []
    for line in text.splitlines():
        match = _LINE.match(line.strip())
        if match:
            stacks.append((match["stack"].split(";"), int(match["count"])))
    return stacks


def function(frame: str) -> str:
    """`cycle (/work/main/scheduler.py:301)` → `cycle (scheduler.py)`: one row per function, not per line."""
    name, _, where = frame.partition(" (")
    path = _FRAME_LINE.sub("", "(" + where).strip("()")
    parts = Path(path).parts
    short = "/".join(parts[-2:]) if len(parts) > 1 else path
    return f"{name} ({short})"


def category(stack: list[str]) -> str:
    joined = ";".join(stack)
    for name, needles in CATEGORIES:
        if any(n in joined for n in needles):
            return name
    return "other"


def summarise(text: str, top: int = 20) -> str:
    stacks = parse(text)
    total = sum(c for _, c in stacks) or 1
    by_category: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    total_time: Counter[str] = Counter()
    for stack, count in stacks:
        by_category[category(stack)] += count
        self_time[function(stack[-1])] += count
        for name in {function(f) for f in stack}:
            total_time[name] += count
    lines = [
        f"{total:,} samples (100/s, all threads, idle excluded)",
        "",
        "| where | samples | share |",
        "|---|---:|---:|",
    ]
    lines += [f"| {name} | {n:,} | {100 * n / total:.1f}% |" for name, n in by_category.most_common()]
    for title, counter in (("self", self_time), ("total (inclusive)", total_time)):
        lines += [
            "",
            f"Top {top} functions by {title} samples:",
            "",
            "| function | samples | share |",
            "|---|---:|---:|",
        ]
        lines += [f"| `{name}` | {n:,} | {100 * n / total:.1f}% |" for name, n in counter.most_common(top)]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("raw", type=Path)
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args()
    print(summarise(args.raw.read_text(), args.top), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
