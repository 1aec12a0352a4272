"""`bind <ns>/<pod> <node>`: a manual binding with the checks in front — every filter of the pod's profile runs
against that node first, and a failing one refuses the bind (exit 1) unless --force; --dry-run only reports.
A missing pod or node, a pod already bound or being deleted: exit 2 with one line.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from kubernetes.client.exceptions import ApiException

from explain import UsageError, cache_without, profile_for, read_pod, run_command
from kubeapi import Api, BindResult, PodRef, report_bound
from policies.algorithm import reasons, run_filters
from policies.framework import CycleState

if TYPE_CHECKING:
    from cli import Config


def manual_bind(api: Api, config: Config, target: str, node: str, *, force: bool, dry_run: bool) -> int:
    return run_command(lambda: _manual_bind(api, config, target, node, force=force, dry_run=dry_run))


def _manual_bind(api: Api, config: Config, target: str, node: str, *, force: bool, dry_run: bool) -> int:
    pod = read_pod(api, target)
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
    cache = cache_without(api, pod)
    nodes = cache.node_list()
    target_node = next(n for n in nodes if n.name == node)
    state = CycleState(nodes, cache.objects())  # namespaces' labels, selectors and volumes, as the daemon reads them
    failed = reasons(run_filters(profile_for(config, pod), pod, target_node, state))
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
    report_bound(api, pod, node)
    return 0
