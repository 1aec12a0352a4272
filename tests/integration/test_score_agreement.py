"""Choices agree with stock kube-scheduler: on seeded random clusters (<= 50 nodes each, random labels, taints
including PreferNoSchedule, load already bound via nodeName, images in node status, namespaces with labels,
Services and ReplicaSets) kube-scheduler places one pod with spread constraints (or kube's system defaults),
preferred node affinity and pod (anti-)affinity terms; our `explain --output json` on the same state must rank
kube's node among our top-scoring nodes (kube breaks ties at random), and beyond that every feasible node's
total must be kube's. Both run kube's default profile (`preset: default-scheduler` here; kube's own defaults
there, scoring every feasible node).

Many scenarios share one control plane at once (a round): each has its own namespaces, nodes labelled with its
id (the pod's nodeSelector keeps it on them), topology values and image names prefixed with its id, so no
scenario sees another's pods in its domains. kube-scheduler starts after a round is created (its caches are
synced before it schedules), places every pod of the round, and logs its per-plugin scores (`--vmodule
schedule_one=10`) for the report. A disagreement is reported with its seed and both tables.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import random
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from nodes import create_nodes, node_manifest

from cli import make_config, parse_args
from explain import explain
from kubeapi import Api, load_client
from tests.integration.conftest import Cluster, body, conditions, kube_scheduler, node_name, unique, wait_for

pytestmark = pytest.mark.slow

SEED = 16_000
# MY_SCHEDULER_AGREEMENT_SCENARIOS runs fewer (or more) while investigating.
SCENARIOS, PER_ROUND = int(os.environ.get("MY_SCHEDULER_AGREEMENT_SCENARIOS", "200")), 25
SCENARIO_LABEL = "agreement.example/scenario"
APPS = ["web", "db", "cache", "queue"]
TEAMS = ["a", "b"]
PAUSE = "registry.k8s.io/pause:3.10"
MiB = 1024 * 1024


@dataclass
class Scenario:
    seed: int
    id: str
    nodes: list[dict[str, Any]] = field(default_factory=list)  # node_manifest kwargs
    namespaces: dict[str, dict[str, str]] = field(default_factory=dict)  # name → labels
    pods: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (namespace, manifest), bound
    incoming: dict[str, Any] = field(default_factory=dict)  # the pod kube-scheduler places
    # Services selecting pods (their selectors), and a ReplicaSet owning the incoming pod (its selector): with no
    # constraints of its own, the pod is then spread by kube's system defaults.
    services: list[dict[str, str]] = field(default_factory=list)
    replica_set: dict[str, Any] | None = None

    @property
    def namespace(self) -> str:
        return next(iter(self.namespaces))


def _selector(rng: random.Random) -> dict[str, Any]:
    if rng.random() < 0.7:
        return {"matchLabels": {"app": rng.choice(APPS)}}
    return {"matchExpressions": [{"key": "app", "operator": "In", "values": rng.sample(APPS, 2)}]}


def _pod_term(rng: random.Random, keys: list[str], namespaces: list[str]) -> dict[str, Any]:
    term: dict[str, Any] = {"labelSelector": _selector(rng), "topologyKey": rng.choice(keys)}
    kind = rng.random()
    if kind < 0.15:
        term["namespaceSelector"] = {"matchLabels": {"team": rng.choice(TEAMS)}}
    elif kind < 0.25:
        term["namespaceSelector"] = {}
    elif kind < 0.35:
        term["namespaces"] = rng.sample(namespaces, rng.randint(1, len(namespaces)))
    return term


def _weighted(rng: random.Random, keys: list[str], namespaces: list[str], count: int) -> list[dict[str, Any]]:
    return [{"weight": rng.randint(1, 100), "podAffinityTerm": _pod_term(rng, keys, namespaces)} for _ in range(count)]


def _pod_affinity(
    rng: random.Random, keys: list[str], namespaces: list[str], chance: float, required: float
) -> dict[str, Any]:
    affinity: dict[str, Any] = {}
    for kind in ("podAffinity", "podAntiAffinity"):
        section: dict[str, Any] = {}
        if rng.random() < chance:
            section["preferredDuringSchedulingIgnoredDuringExecution"] = _weighted(
                rng, keys, namespaces, rng.randint(1, 3)
            )
        if rng.random() < required:
            section["requiredDuringSchedulingIgnoredDuringExecution"] = [_pod_term(rng, keys, namespaces)]
        if section:
            affinity[kind] = section
    return affinity


def _requests(rng: random.Random) -> dict[str, str]:
    requests = {}
    if rng.random() < 0.85:
        requests["cpu"] = rng.choice(["50m", "100m", "250m", "500m", "1", "1500m"])
    if rng.random() < 0.8:
        requests["memory"] = rng.choice(["64Mi", "128Mi", "256Mi", "1Gi", "2Gi"])
    return requests


def scenario(seed: int) -> Scenario:
    """One random cluster and pod; everything named after the seed, so scenarios can share a control plane."""
    rng = random.Random(seed)
    s = Scenario(seed, f"s{seed}")
    own, other = f"{s.id}-{unique('a')}", f"{s.id}-{unique('b')}"
    s.namespaces = {own: {"team": rng.choice(TEAMS)}, other: {"team": rng.choice(TEAMS)}}
    namespaces = list(s.namespaces)
    zones = [f"{s.id}-z{i}" for i in range(rng.randint(1, 4))]
    racks = [f"{s.id}-r{i}" for i in range(rng.randint(1, 5))]
    keys = ["kubernetes.io/hostname", "topology.kubernetes.io/zone", "rack"]
    images = [(f"registry.example/{s.id}/img{i}:v1", rng.choice([5, 30, 200, 600, 1500]) * MiB) for i in range(6)]
    for i in range(rng.randint(2, 50)):
        labels = {SCENARIO_LABEL: s.id, "topology.kubernetes.io/zone": rng.choice(zones)}
        if rng.random() < 0.7:
            labels["rack"] = rng.choice(racks)
        for key, values in (("disk", ["ssd", "hdd"]), ("tier", ["1", "2", "3"]), ("gpu", ["true"])):
            if rng.random() < 0.5:
                labels[key] = rng.choice(values)
        taints: dict[tuple[str, str], dict[str, str]] = {}
        for _ in range(rng.choice([0, 0, 0, 1, 1, 2])):
            key = rng.choice(["spot", "dedicated", "maintenance"])
            effect = rng.choices(["PreferNoSchedule", "NoSchedule"], weights=[85, 15])[0]
            taints.setdefault((key, effect), {"key": key, "value": rng.choice(["true", "x"]), "effect": effect})
        s.nodes.append(
            {
                "name": f"{s.id}-n{i}",
                "cpu": rng.choice(["2", "4", "8", "16"]),
                "memory": rng.choice(["4Gi", "8Gi", "16Gi", "32Gi"]),
                "labels": labels,
                "taints": list(taints.values()),
                "images": [([name], size) for name, size in rng.sample(images, rng.randint(0, 4))],
            }
        )
    for i in range(rng.randint(0, 3 * len(s.nodes))):
        spec: dict[str, Any] = {
            "nodeName": rng.choice(s.nodes)["name"],
            "schedulerName": "nobody",
            "containers": [{"name": "c", "image": PAUSE, "resources": {"requests": _requests(rng)}}],
        }
        if affinity := _pod_affinity(rng, keys, namespaces, 0.15, 0.04):
            spec["affinity"] = affinity
        labels = {"app": rng.choice(APPS)} if rng.random() < 0.9 else {}
        s.pods.append((rng.choice(namespaces), {"metadata": {"name": f"e{i}", "labels": labels}, "spec": spec}))
    _incoming(rng, s, keys, [name for name, _ in images])
    return s


def _incoming(rng: random.Random, s: Scenario, keys: list[str], images: list[str]) -> None:
    """The pod to place: requests, images, tolerations, preferred node affinity, pod (anti-)affinity, spread
    constraints (or a Service / ReplicaSet, for kube's system defaults)."""
    namespaces = list(s.namespaces)
    containers = [
        {
            "name": f"c{i}",
            "image": rng.choice([PAUSE, *images]),
            "resources": {"requests": _requests(rng)},
        }
        for i in range(rng.randint(1, 3))
    ]
    spec: dict[str, Any] = {"containers": containers, "nodeSelector": {SCENARIO_LABEL: s.id}}
    tolerations: list[dict[str, str]] = []
    if rng.random() < 0.3:
        tolerations.append({"key": rng.choice(["spot", "dedicated"]), "operator": "Exists"})
    if rng.random() < 0.1:
        tolerations.append({"operator": "Exists", "effect": "PreferNoSchedule"})
    if tolerations:
        spec["tolerations"] = tolerations
    affinity = _pod_affinity(rng, keys, namespaces, 0.5, 0.05)
    if rng.random() < 0.5:
        preferred = []
        for _ in range(rng.randint(1, 3)):
            key, values = rng.choice([("disk", ["ssd", "hdd"]), ("tier", ["1", "2", "3"]), ("gpu", ["true"])])
            operator = rng.choice(["In", "NotIn", "Exists"])
            expression = {"key": key, "operator": operator, **({"values": values[:1]} if operator != "Exists" else {})}
            preferred.append({"weight": rng.randint(1, 100), "preference": {"matchExpressions": [expression]}})
        affinity["nodeAffinity"] = {"preferredDuringSchedulingIgnoredDuringExecution": preferred}
    if affinity:
        spec["affinity"] = affinity
    app = rng.choice(APPS)
    s.services = [{"app": rng.choice(APPS)} for _ in range(rng.choice([0, 0, 1, 2]))]
    if rng.random() < 0.3:
        s.replica_set = {"matchLabels": {"app": app}}
    if rng.random() < 0.4:
        spec["topologySpreadConstraints"] = [
            {
                "maxSkew": rng.choice([1, 1, 2, 3]),
                "topologyKey": key,
                "whenUnsatisfiable": rng.choices(["ScheduleAnyway", "DoNotSchedule"], weights=[85, 15])[0],
                "labelSelector": _selector(rng),
            }
            for key in rng.sample(keys, rng.randint(1, 2))
        ]
    labels = {"app": app} if rng.random() < 0.9 or s.replica_set else {}
    s.incoming = {"metadata": {"name": "incoming", "labels": labels}, "spec": spec}


def create(core: client.CoreV1Api, scenarios: list[Scenario], scheduler: str) -> None:
    for s in scenarios:
        for namespace, labels in s.namespaces.items():
            core.create_namespace(body({"metadata": {"name": namespace, "labels": labels}}), _preload_content=False)
    create_nodes(core, [node_manifest(**n) for s in scenarios for n in s.nodes])

    def post(namespace_and_manifest: tuple[str, dict[str, Any]]) -> None:
        namespace, manifest = namespace_and_manifest
        response: Any = core.create_namespaced_pod(namespace, body(manifest), _preload_content=False)
        response.read()  # read it all, or the pooled connection's next request reads its tail
        response.release_conn()

    apps = client.AppsV1Api(core.api_client)
    owners: dict[str, list[dict[str, Any]]] = {}
    for s in scenarios:
        for i, selector in enumerate(s.services):
            service = {"metadata": {"name": f"svc{i}"}, "spec": {"selector": selector, "ports": [{"port": 80}]}}
            core.create_namespaced_service(s.namespace, body(service))
        if s.replica_set is not None:
            labels = s.replica_set["matchLabels"]
            replica_set = {
                "metadata": {"name": "rs"},
                "spec": {
                    "replicas": 0,
                    "selector": s.replica_set,
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {"containers": [{"name": "c", "image": PAUSE}]},
                    },
                },
            }
            created = apps.create_namespaced_replica_set(s.namespace, body(replica_set))
            uid = created.metadata.uid if created.metadata else None
            owners[s.id] = [
                {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": uid, "controller": True}
            ]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(post, [p for s in scenarios for p in s.pods]))
        incoming = [
            (
                s.namespace,
                {
                    "metadata": {
                        **s.incoming["metadata"],
                        **({"ownerReferences": owners[s.id]} if s.id in owners else {}),
                    },
                    "spec": {**s.incoming["spec"], "schedulerName": scheduler},
                },
            )
            for s in scenarios
        ]
        list(pool.map(post, incoming))


def delete(core: client.CoreV1Api, scenarios: list[Scenario]) -> None:
    for s in scenarios:
        for namespace in s.namespaces:
            core.delete_collection_namespaced_pod(namespace, grace_period_seconds=0)
            core.delete_namespace(namespace, _preload_content=False)
    core.delete_collection_node(label_selector=f"{SCENARIO_LABEL} in ({','.join(s.id for s in scenarios)})")


def placed(core: client.CoreV1Api, scenarios: list[Scenario]) -> dict[str, str | None] | None:
    """Scenario id → kube's node, or None when kube found the pod unschedulable; None until all are decided."""
    result: dict[str, str | None] = {}
    for s in scenarios:
        pod = core.read_namespaced_pod("incoming", s.namespace)
        if node := node_name(pod):
            result[s.id] = node
        elif any(c.type == "PodScheduled" and c.status == "False" for c in conditions(pod)):
            result[s.id] = None
        else:
            return None
    return result


_SCORED = re.compile(r'"Plugin scored node for pod" pod="([^"]+)" plugin="([^"]+)" node="([^"]+)" score=(\d+)')


def kube_scores(log: Path) -> dict[str, dict[str, dict[str, int]]]:
    """pod → node → plugin → weighted score, from kube-scheduler's V(10) lines."""
    table: dict[str, dict[str, dict[str, int]]] = {}
    for pod, plugin, node, score in _SCORED.findall(log.read_text()):
        table.setdefault(pod, {}).setdefault(node, {})[plugin] = int(score)
    return table


@contextlib.contextmanager
def our_explain(kubeconfig: str, config: Path) -> Iterator[Any]:
    """`scheduler.py explain --output json` in this process (its own code path: flags → Config → Api →
    explain), so 200 scenarios do not pay for 200 interpreter starts."""
    args = parse_args(["--kubeconfig", kubeconfig, "--config", str(config), "explain", "x/y", "--output", "json"])
    api = Api(load_client(kubeconfig), component="agreement-test", instance="agreement-test")

    def run(target: str) -> dict[str, Any]:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert explain(api, make_config(args), target, "json") == 0
        report: dict[str, Any] = json.loads(out.getvalue())
        return report

    yield run


def same_table(ours: dict[str, Any], theirs: dict[str, dict[str, int]]) -> bool:
    """Every node kube scored has our total, and we scored no other node (kube scores nothing when only one
    node is feasible)."""
    totals = {r["node"]: r["total"] for r in ours["nodes"] if r["feasible"]}
    if len(totals) == 1 and not theirs:
        return True
    return totals.keys() == theirs.keys() and all(
        abs(totals[node] - sum(scores.values())) < 1e-6 for node, scores in theirs.items()
    )


def compare(
    s: Scenario, kube_node: str, ours: dict[str, Any], theirs: dict[str, dict[str, int]], strict: bool = False
) -> str | None:
    """None when kube's node is among our top-scoring feasible nodes (`strict`: and every node's total is
    kube's), else the report of the disagreement."""
    totals = {r["node"]: r["total"] for r in ours["nodes"] if r["feasible"] and r["node"].startswith(f"{s.id}-")}
    top = max(totals.values(), default=None)
    agrees = kube_node in totals and top is not None and totals[kube_node] >= top - 1e-6
    if agrees and not (strict and not same_table(ours, theirs)):
        return None
    weights = ours["weights"]
    rows = {  # both weighted, as kube logs them
        r["node"]: {
            "ours": {**{name: v * weights[name] for name, v in r["scores"].items()}, "total": r["total"]},
            "kube": {**theirs.get(r["node"], {})},
        }
        for r in ours["nodes"]
        if r["node"].startswith(f"{s.id}-")
    }
    for row in rows.values():
        row["kube"]["total"] = sum(row["kube"].values())
    return yaml.safe_dump(
        {
            "seed": s.seed,
            "kube chose": kube_node,
            "our top": sorted(n for n, t in totals.items() if top is not None and t >= top - 1e-6),
            "weights": ours["weights"],
            "nodes": rows,
            "incoming": s.incoming,
        },
        sort_keys=False,
    )


def test_scores_agree_with_kube_scheduler(cluster: Cluster, tmp_path: Path) -> None:
    config = tmp_path / "policy.yaml"
    config.write_text(yaml.safe_dump({"preset": "default-scheduler"}))
    disagreements, infeasible, compared = [], 0, 0
    other_totals: list[str] = []  # same choice, but some node's total differs from kube's
    started = time.monotonic()
    seeds = [SEED + i for i in range(SCENARIOS)]
    with our_explain(cluster.kubeconfig, config) as ours:
        for first in range(0, len(seeds), PER_ROUND):
            scenarios = [scenario(seed) for seed in seeds[first : first + PER_ROUND]]
            name = unique("kube")
            try:
                create(cluster.core, scenarios, name)
                with kube_scheduler(
                    cluster.kubeconfig,
                    name,
                    tmp_path,
                    settings={"percentageOfNodesToScore": 100},
                    args=["--vmodule", "schedule_one=10"],
                ) as log:
                    kube = wait_for(
                        functools.partial(placed, cluster.core, scenarios),
                        timeout=120,
                        what=f"kube-scheduler (log: {log})",
                    )
                scores = kube_scores(log)
                for s in scenarios:
                    target = f"{s.namespace}/incoming"
                    report = ours(target)
                    kube_node = kube[s.id]
                    if kube_node is None:
                        infeasible += 1
                        if report["chosen"] is not None:
                            disagreements.append(f"seed {s.seed}: kube found no node, we chose {report['chosen']}")
                        continue
                    compared += 1
                    if problem := compare(s, kube_node, report, scores.get(target, {})):
                        disagreements.append(problem)
                    elif problem := compare(s, kube_node, report, scores.get(target, {}), strict=True):
                        other_totals.append(problem)
            finally:
                delete(cluster.core, scenarios)
    seconds = time.monotonic() - started
    print(f"{compared} scenarios compared, {infeasible} infeasible for kube, {seconds:.0f} s")
    print(f"{compared - len(disagreements) - len(other_totals)} with every node's total equal to kube's")
    assert compared + infeasible == SCENARIOS
    assert compared >= 0.8 * SCENARIOS, "the scenarios should mostly be feasible"
    assert not disagreements, f"{len(disagreements)} of {compared} disagree:\n" + "\n---\n".join(disagreements)
    # Stronger than the choice: every feasible node's total is kube's (measured: all of them, 2026-11-26).
    assert not other_totals, f"{len(other_totals)} of {compared} choose alike but differ on some node's total:\n" + (
        "\n---\n".join(other_totals)
    )
