"""`explain <ns>/<pod>`: every node, each filter's verdict, each score, the weighted total, the choice — judged
with the scheduler's own policies, reading the cluster once and writing nothing.

Also what `explain` and `bind` (manual_bind.py) share: reading the pod, its profile and the cluster, and the
usage errors a user can fix, which exit 2 with one line.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from kubernetes.client import V1Pod
from kubernetes.client.exceptions import ApiException

from cache import ClusterCache
from informer import list_cluster
from kubeapi import Api, PodRef
from policies.algorithm import Decision, schedule
from policies.framework import Code, NodeInfo, Profile
from policies.preemption import preempt

if TYPE_CHECKING:
    from cli import Config


class UsageError(Exception):
    """Exit 2 with this one line."""


def _split(target: str) -> tuple[str, str]:
    namespace, sep, name = target.partition("/")
    if not sep or not namespace or not name:
        raise UsageError(f"expected <namespace>/<pod>, got {target!r}")
    return namespace, name


def read_pod(api: Api, target: str) -> V1Pod:
    namespace, name = _split(target)
    try:
        return api.read_pod(namespace, name)
    except ApiException as e:
        if e.status == 404:
            raise UsageError(f"pod {namespace}/{name} not found") from e
        raise


def profile_for(config: Config, pod: V1Pod) -> Profile:
    name = pod.spec.scheduler_name if pod.spec else None
    by_name = {p.scheduler_name: p for p in config.profiles}
    return by_name.get(str(name), config.profiles[0])


def cache_without(api: Api, pod: V1Pod, *, budgets: bool = False) -> ClusterCache:
    """The cluster read once (nodes, assigned pods, namespaces, selectors and, with `budgets`,
    PodDisruptionBudgets), leaving out the pod being judged."""
    cache = list_cluster(api, time.monotonic, budgets=budgets)
    cache.remove_pod(PodRef.of(pod).uid)
    return cache


def run_command(command: Callable[[], int]) -> int:
    try:
        return command()
    except UsageError as e:
        print(f"scheduler.py: error: {e}", file=sys.stderr)
        return 2


def explain(api: Api, config: Config, target: str, output: str) -> int:
    return run_command(lambda: _explain(api, config, target, output))


def _explain(api: Api, config: Config, target: str, output: str) -> int:
    pod = read_pod(api, target)
    profile = profile_for(config, pod)
    cache = cache_without(api, pod, budgets=profile.preemption)
    nodes = cache.node_list()
    # every node, every verdict, every score
    decision = schedule(profile, pod, nodes, explain=True, objects=cache.objects())
    report = _report(PodRef.of(pod), profile, nodes, decision)
    if decision.node is None and decision.status.code is Code.UNSCHEDULABLE and profile.preemption:
        report["preemption"] = _preemption(profile, pod, cache, decision)
    print(json.dumps(report, indent=2) if output == "json" else _table(report))
    return 0


def _preemption(profile: Profile, pod: V1Pod, cache: ClusterCache, decision: Decision) -> dict[str, Any]:
    """What DefaultPreemption would do for this unschedulable pod (nothing is deleted): the node it would
    nominate and the victims it would evict, or why it cannot help."""
    budgets = list(cache.budgets.values())
    result = preempt(profile, pod, cache.node_list(), decision.verdicts, budgets, objects=cache.objects())
    candidate = result.candidate
    return {
        "node": candidate.node if candidate else None,
        "victims": [f"{v.namespace}/{v.name}" for v in candidate.victims] if candidate else [],
        "message": result.message,
    }


def _report(ref: PodRef, profile: Profile, nodes: Sequence[NodeInfo], decision: Decision) -> dict[str, Any]:
    rows = []
    for node in nodes:
        verdicts = decision.verdicts[node.name]
        rows.append(
            {
                "node": node.name,
                "feasible": all(s.ok for s in verdicts.values()),
                "filters": {name: list(s.reasons) for name, s in verdicts.items()},
                "scores": {k: round(v, 2) for k, v in decision.scores.get(node.name, {}).items()},
                "total": round(decision.totals[node.name], 2) if node.name in decision.totals else None,
            }
        )
    return {
        "pod": str(ref),
        "profile": profile.scheduler_name,
        "weights": {plugin.name: weight for plugin, weight in profile.scores},
        "nodes": rows,
        "chosen": decision.node,
        "message": decision.message or None,
    }


def _table(report: dict[str, Any]) -> str:
    weights: dict[str, int] = report["weights"]
    header = ["NODE", "FILTERS", *(f"{name}(x{w})" for name, w in weights.items()), "TOTAL"]
    lines = [header]
    for row in sorted(report["nodes"], key=lambda r: (not r["feasible"], -(r["total"] or 0), r["node"])):
        failed = [f"{name}: {'; '.join(rs)}" for name, rs in row["filters"].items() if rs]
        scores = [f"{row['scores'][name]:.1f}" if name in row["scores"] else "-" for name in weights]
        total = f"{row['total']:.1f}" if row["total"] is not None else "-"
        lines.append([row["node"], " | ".join(failed) or "passed", *scores, total])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines)
    verdict = (
        f"=> {report['pod']} would be bound to {report['chosen']}"
        if report["chosen"]
        else f"=> {report['pod']} cannot be scheduled: FailedScheduling: {report['message']}"
    )
    preemption = report.get("preemption")
    if preemption and preemption["node"]:
        victims = ", ".join(preemption["victims"]) or "no pod"
        verdict += f"\n=> preemption would evict {victims} on {preemption['node']}, and nominate that node"
    elif preemption:
        verdict += f"\n=> preemption cannot help: {preemption['message']}"
    return f"pod {report['pod']}, profile {report['profile']}\n{text}\n{verdict}"
