"""Preemption agrees with stock kube-scheduler: on seeded scenarios (nodes full of lower-priority pods, some
guarded by a PodDisruptionBudget, one high-priority pod that fits nowhere), both schedulers evict the same
victims and bind the pod to the same node.

Each scenario has its own nodes per scheduler (the pod's nodeSelector keeps it there); both schedulers run at
once. Pods on one node have distinct priorities, so kube's (unstable) victim order is never a coin toss. Where
kube's node choice is a tie (its last tie-break is map order), either of the tied nodes is accepted: the ties
are found by ranking every node's candidate with kube's criteria (policies/preemption.py, offline, from the
same manifests). Victims are deleted with grace 0 (`terminationGracePeriodSeconds: 0`): no kubelet runs here.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client import V1LabelSelector
from nodes import node_manifest

from cache import node_facts, pod_info, pod_model
from policies.config import default_profile
from policies.framework import Code, NodeInfo, Status, unresolvable
from policies.preemption import Budget, Candidate, preempt
from tests.integration.conftest import Env, body, kube_scheduler, node_name, unique, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SEED = 1537
SCENARIOS, NODES = 16, 4
NODE_CPU = 2000  # millicores
PRIORITIES = (10, 20, 30, 40, 50, 60)
URGENT = 1000
SIZES = (300, 500, 700, 900)


@dataclass(frozen=True)
class Victim:
    node: int
    name: str
    cpu: int
    priority: int
    guarded: bool


@dataclass(frozen=True)
class Scenario:
    index: int
    victims: tuple[Victim, ...]
    budget: bool  # a PodDisruptionBudget (0 disruptions allowed) over the guarded victims
    cpu: int  # the preemptor's request

    @property
    def guard(self) -> str:
        return f"guarded-s{self.index}"


def scenario(rng: random.Random, index: int) -> Scenario:
    victims: list[Victim] = []
    for node in range(NODES):
        used = 0
        for k, priority in enumerate(rng.sample(PRIORITIES, rng.randint(1, 4))):
            cpu = rng.choice([s for s in SIZES if used + s <= NODE_CPU] or [0])
            if not cpu:
                break
            used += cpu
            victims.append(Victim(node, f"s{index}-n{node}-v{k}", cpu, priority, rng.random() < 0.3))
    free = max(NODE_CPU - sum(v.cpu for v in victims if v.node == n) for n in range(NODES))
    cpu = rng.randrange(free + 100, NODE_CPU + 1, 100) if free < NODE_CPU - 100 else NODE_CPU
    return Scenario(index, tuple(victims), rng.random() < 0.5, cpu)


def priority_class(value: int, prefix: str) -> str:
    return f"{prefix}-{value}"


@dataclass
class Side:
    """One scheduler's copy of the scenarios: its namespace, scheduler name and nodes."""

    namespace: str
    scheduler: str
    nodes: dict[tuple[int, int], str]  # (scenario, node index) → node name


def create(env: Env, side: Side, scenarios: list[Scenario], classes: str) -> None:
    for s in scenarios:
        for n in range(NODES):
            side.nodes[s.index, n] = env.node(
                f"{side.scheduler[-6:]}-s{s.index}-n{n}", cpu="2", labels={"scenario": f"{side.scheduler}-s{s.index}"}
            )
        for v in s.victims:
            manifest = victim_manifest(s, v, side.nodes[s.index, v.node], classes)
            env.core.create_namespaced_pod(side.namespace, body(manifest))
        if s.budget and any(v.guarded for v in s.victims):
            client.PolicyV1Api(env.core.api_client).create_namespaced_pod_disruption_budget(
                side.namespace,
                body(
                    {
                        "metadata": {"name": s.guard},
                        "spec": {
                            "minAvailable": sum(v.guarded for v in s.victims),
                            "selector": {"matchLabels": {"guard": s.guard}},
                        },
                    }
                ),
            )
    for s in scenarios:
        env.core.create_namespaced_pod(side.namespace, body(urgent_manifest(s, side.scheduler, classes)))


def victim_manifest(s: Scenario, v: Victim, node: str, classes: str | None) -> dict[str, Any]:
    return {
        "metadata": {
            "name": v.name,
            "labels": {"guard": s.guard} if v.guarded else {},
        },
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 0,
            **({"priorityClassName": priority_class(v.priority, classes)} if classes else {"priority": v.priority}),
            "containers": [
                {"name": "c", "image": "registry.k8s.io/pause:3.10", "resources": {"requests": {"cpu": f"{v.cpu}m"}}}
            ],
        },
    }


def urgent_manifest(s: Scenario, scheduler: str, classes: str | None) -> dict[str, Any]:
    return {
        "metadata": {"name": f"s{s.index}-urgent"},
        "spec": {
            "schedulerName": scheduler,
            "terminationGracePeriodSeconds": 0,
            "nodeSelector": {"scenario": f"{scheduler}-s{s.index}"},
            **({"priorityClassName": priority_class(URGENT, classes)} if classes else {"priority": URGENT}),
            "containers": [
                {"name": "c", "image": "registry.k8s.io/pause:3.10", "resources": {"requests": {"cpu": f"{s.cpu}m"}}}
            ],
        },
    }


def outcome(env: Env, side: Side, s: Scenario) -> tuple[int, list[str]] | None:
    """(the node index the preemptor is bound to, the victims gone), once it is bound."""
    pods = {p.metadata.name: p for p in env.core.list_namespaced_pod(side.namespace).items if p.metadata}
    node = node_name(pods[f"s{s.index}-urgent"])
    if node is None:
        return None
    index = next(n for (i, n), name in side.nodes.items() if i == s.index and name == node)
    return index, sorted(v.name for v in s.victims if v.name not in pods)


def settled(env: Env, side: Side, s: Scenario, who: str) -> tuple[int, list[str]]:
    result: tuple[int, list[str]] = wait_for(lambda: outcome(env, side, s), 90, what=f"{who} to place s{s.index}")
    return result


def offline(manifest: dict[str, Any]) -> dict[str, Any]:
    """A manifest as the API server would return it in namespace x (what the offline model reads)."""
    meta = manifest["metadata"]
    return {**manifest, "metadata": {**meta, "namespace": "x", "uid": meta["name"]}}


def acceptable(s: Scenario) -> dict[int, list[str]]:
    """Every node kube may choose (its candidates that tie under kube's criteria), with the victims it evicts there:
    each node's candidate as kube's dry run finds it, ranked as pickOneNodeForPreemption does."""
    names = [f"s{s.index}-n{n}" for n in range(NODES)]
    nodes = [NodeInfo(node_facts(node_manifest(name, cpu="2", labels={"scenario": f"x-s{s.index}"}))) for name in names]
    for v in s.victims:
        nodes[v.node].add_pod(pod_info(offline(victim_manifest(s, v, names[v.node], None))))
    pod = pod_model(offline(urgent_manifest(s, "x", None)))
    budgets = (
        [Budget("x", s.guard, V1LabelSelector(match_labels={"guard": s.guard}), 0, frozenset())] if s.budget else []
    )
    profile = default_profile("x")
    candidates: dict[int, Candidate] = {}
    for n, name in enumerate(names):
        # Only node n may be preempted on: the others are made unresolvable for this dry run.
        verdicts = {
            other: {"NodeResourcesFit": Status(Code.UNSCHEDULABLE, ("Insufficient cpu",))}
            if other == name
            else {"NodeAffinity": unresolvable("elsewhere")}
            for other in names
        }
        result = preempt(profile, pod, nodes, verdicts, budgets)
        if result.candidate is not None:
            candidates[n] = result.candidate

    def rank(c: Candidate) -> tuple[int, int, int, int]:
        return c.pdb_violations, c.victims[0].priority, sum(v.priority for v in c.victims), len(c.victims)

    best = min(rank(c) for c in candidates.values())
    return {n: sorted(v.name for v in c.victims) for n, c in candidates.items() if rank(c) == best}


@pytest.fixture
def classes(env: Env) -> Iterator[str]:
    scheduling = client.SchedulingV1Api(env.core.api_client)
    prefix = unique("agree")
    for value in (*PRIORITIES, URGENT):
        scheduling.create_priority_class(body({"metadata": {"name": priority_class(value, prefix)}, "value": value}))
    try:
        yield prefix
    finally:
        for value in (*PRIORITIES, URGENT):
            scheduling.delete_priority_class(priority_class(value, prefix))


def test_preemption_agrees_with_kube_scheduler(env: Env, classes: str, tmp_path: Path) -> None:
    rng = random.Random(SEED)
    scenarios = [scenario(rng, i) for i in range(SCENARIOS)]
    kube_namespace = unique("t-kube")
    env.core.create_namespace(body({"metadata": {"name": kube_namespace}}))
    ours = Side(env.namespace, env.scheduler_name, {})
    kube = Side(kube_namespace, unique("kube"), {})
    try:
        with ExitStack() as stack:
            kube_log = stack.enter_context(kube_scheduler(env.cluster.kubeconfig, kube.scheduler, tmp_path))
            stack.enter_context(env.scheduler("--interval", "0.3"))
            create(env, ours, scenarios, classes)
            create(env, kube, scenarios, classes)
            theirs = {s.index: settled(env, kube, s, f"kube-scheduler (log: {kube_log})") for s in scenarios}
            mine = {s.index: settled(env, ours, s, "my-scheduler") for s in scenarios}
        report = []
        for s in scenarios:
            allowed = acceptable(s)
            kube_node, kube_victims = theirs[s.index]
            our_node, our_victims = mine[s.index]
            if allowed.get(kube_node) != kube_victims or allowed.get(our_node) != our_victims:
                report.append(
                    {
                        "scenario": s.index,
                        "kube-scheduler": {"node": kube_node, "victims": kube_victims},
                        "ours": {"node": our_node, "victims": our_victims},
                        "acceptable (kube's criteria)": allowed,
                        "victims": [vars(v) for v in s.victims],
                        "budget": s.budget,
                        "preemptor cpu": s.cpu,
                    }
                )
        assert not report, yaml.safe_dump({"seed": SEED, "disagreements": report}, sort_keys=False)
    finally:
        env.core.delete_collection_namespaced_pod(kube_namespace, grace_period_seconds=0)
        env.core.delete_namespace(kube_namespace, _preload_content=False)
