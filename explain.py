"""Commands that judge one pod with the scheduler's own policies, reading the cluster once:

- `explain <ns>/<pod>`: every node, each filter's verdict, each score, the weighted total, the choice.
- `bind <ns>/<pod> <node>`: a manual binding, refused (exit 1) when the node fails a filter, unless --force.

Errors a user can fix (no such pod or node, pod already bound or being deleted) exit 2 with one line.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from kubernetes.client import V1Pod
from kubernetes.client.exceptions import ApiException

from informer import list_cluster
from kubeapi import Api, BindResult, PodRef, call_quietly
from policies.framework import CycleState, Decision, NodeInfo, Profile, reasons, run_filters, schedule

if TYPE_CHECKING:
    from cli import Config

log = logging.getLogger("my-scheduler")


class UsageError(Exception):
    """Exit 2 with this one line."""


def _split(target: str) -> tuple[str, str]:
    namespace, sep, name = target.partition("/")
    if not sep or not namespace or not name:
        raise UsageError(f"expected <namespace>/<pod>, got {target!r}")
    return namespace, name


def _read_pod(api: Api, target: str) -> V1Pod:
    namespace, name = _split(target)
    try:
        return api.read_pod(namespace, name)
    except ApiException as e:
        if e.status == 404:
            raise UsageError(f"pod {namespace}/{name} not found") from e
        raise


def _profile(config: Config, pod: V1Pod) -> Profile:
    name = pod.spec.scheduler_name if pod.spec else None
    by_name = {p.scheduler_name: p for p in config.profiles}
    return by_name.get(str(name), config.profiles[0])


def _cluster(api: Api, pod: V1Pod) -> list[NodeInfo]:
    """Nodes with their pods, leaving out the pod being judged (it may already be bound)."""
    cache = list_cluster(api, time.monotonic)
    cache.remove_pod(PodRef.of(pod).uid)
    return cache.node_list()


def _run(command: Callable[[], int]) -> int:
    try:
        return command()
    except UsageError as e:
        print(f"scheduler.py: error: {e}", file=sys.stderr)
        return 2


# --- explain ------------------------------------------------------------------------------------------------


def explain(api: Api, config: Config, target: str, output: str) -> int:
    return _run(lambda: _explain(api, config, target, output))


def _explain(api: Api, config: Config, target: str, output: str) -> int:
    pod = _read_pod(api, target)
    profile = _profile(config, pod)
    nodes = _cluster(api, pod)
    decision = schedule(profile, pod, nodes, explain=True)  # every node, every verdict, every score
    report = _report(PodRef.of(pod), profile, nodes, decision)
    print(json.dumps(report, indent=2) if output == "json" else _table(report))
    return 0


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
    return f"pod {report['pod']}, profile {report['profile']}\n{text}\n{verdict}"


# --- bind ---------------------------------------------------------------------------------------------------


def manual_bind(api: Api, config: Config, target: str, node: str, *, force: bool, dry_run: bool) -> int:
    return _run(lambda: _manual_bind(api, config, target, node, force=force, dry_run=dry_run))


def _manual_bind(api: Api, config: Config, target: str, node: str, *, force: bool, dry_run: bool) -> int:
    pod = _read_pod(api, target)
    ref = PodRef.of(pod)
    if pod.spec and pod.spec.node_name:
        raise UsageError(f"pod {ref} is already bound to node {pod.spec.node_name}")
    if pod.metadata and pod.metadata.deletion_timestamp is not None:
        raise UsageError(f"pod {ref} is being deleted, cannot be assigned to a host")
    try:
        api.read_node(node)
    except ApiException as e:
        if e.status == 404:
            raise UsageError(f"node {node} not found") from e
        raise
    nodes = _cluster(api, pod)
    target_node = next(n for n in nodes if n.name == node)
    failed = reasons(run_filters(_profile(config, pod), pod, target_node, CycleState(nodes)))
    if failed and not force:
        print(f"refusing to bind {ref} to {node}: {'; '.join(failed)}", file=sys.stderr)
        return 1
    if failed:
        print(f"--force: binding {ref} to {node} despite: {'; '.join(failed)}", file=sys.stderr)
    if dry_run:
        print(f"{ref} fits {node}; dry run, nothing bound" if not failed else f"dry run: {ref} not bound")
        return 0
    result, message = api.bind(pod, node)
    if result is not BindResult.BOUND:
        raise UsageError(f"{ref} not bound ({result.value}): {message}")
    log.info("Bound %s -> %s", ref, node, extra={"pod": str(ref), "node": node, "result": "bound"})
    call_quietly(api.event, pod, "Normal", "Scheduled", f"Successfully assigned {ref} to {node}")
    return 0
