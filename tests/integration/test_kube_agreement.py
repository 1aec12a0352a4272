"""Feasibility agrees with stock kube-scheduler: for generated nodes (taints, labels, capacity, cordons) and pods
(tolerations, nodeSelector, required node affinity, requests, pod affinity and anti-affinity, topology spread),
each pod is placed by both schedulers or left pending by both. The two run at once on the same nodes, each with
its own namespace and scheduler name.

Which node a pod lands on depends on scores, which differ on purpose; whether it lands at all must not. So the
scenario makes feasibility independent of placement order:
- requests: tiny pods all fit on any node together, medium ones only on big nodes (all of them on any one),
  impossible ones on none;
- pod terms select only *anchor* pods, which are created already bound (`nodeName`) in both namespaces and
  labelled `role`; the scheduled pods are labelled `team`, which only the anchors' anti-affinity selects.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import yaml

from kubeapi import PodRef
from tests.integration.conftest import Env, body, conditions, kube_scheduler, node_name, unique, wait_for

SEED = 20260
NODES, ANCHORS, PODS = 6, 8, 20
MAX_MEDIUM = 3  # per scheduler: 2 x 3 medium pods plus every tiny pod fit on one big node

BIG, SMALL = {"cpu": "8", "memory": "16Gi"}, {"cpu": "500m", "memory": "1Gi"}
CPU = {"tiny": ["5m", "10m"], "medium": ["1"], "impossible": ["10"]}
MEMORY: dict[str, list[str | None]] = {
    "none": [None],
    "tiny": ["8Mi", "16Mi"],
    "medium": ["2Gi"],
    "impossible": ["32Gi"],
}
TAINTS = [("dedicated", "infra"), ("dedicated", "gpu"), ("spot", "true")]
EFFECTS = ["NoSchedule", "NoExecute", "PreferNoSchedule"]
CORDON = "node.kubernetes.io/unschedulable"
# "rack" is on some nodes only, so terms and constraints over it meet nodes without the key.
TOPOLOGY_KEYS = ["kubernetes.io/hostname", "zone", "rack"]
ROLES, TEAMS = ["db", "cache", "web"], ["a", "b"]
PAUSE = {"name": "c", "image": "registry.k8s.io/pause:3.10"}


def scenario(rng: random.Random) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(node kwargs for env.node, anchor pods, pods to schedule) — the same for both schedulers."""
    nodes = []
    for i in range(NODES):
        taints: dict[tuple[str, str], dict[str, str]] = {}  # the API wants (key, effect) unique
        for key, value in rng.sample(TAINTS, rng.choice([0, 0, 1, 2])):
            effect = rng.choice(EFFECTS)
            taints.setdefault((key, effect), {"key": key, "value": value, "effect": effect})
        labels = {"disk": rng.choice(["ssd", "hdd"]), "zone": rng.choice(["z1", "z2"])}
        if rng.random() < 0.6:
            labels["rack"] = rng.choice(["r1", "r2", "r3"])
        nodes.append(
            {
                "name": f"n{i}",
                **(BIG if i % 2 == 0 else SMALL),
                "labels": labels,
                "taints": list(taints.values()),
                "cordoned": rng.random() < 0.15,
            }
        )
    anchors = []
    for i in range(ANCHORS):
        anchor: dict[str, Any] = {
            "name": f"anchor{i}",
            "node": rng.randrange(NODES),
            "labels": {"role": rng.choice(ROLES)},
        }
        if rng.random() < 0.3:
            anchor["affinity"] = {"podAntiAffinity": _required([_term(rng, "team", TEAMS)])}
        anchors.append(anchor)
    pods, medium = [], 0
    for i in range(PODS):
        cpu_size = rng.choices(list(CPU), weights=[70, 15, 15])[0]
        memory_size = rng.choices(list(MEMORY), weights=[40, 35, 15, 10])[0]
        if "medium" in (cpu_size, memory_size):
            medium += 1
            if medium > MAX_MEDIUM:
                cpu_size, memory_size = "tiny", "tiny"
        requests = {"cpu": rng.choice(CPU[cpu_size]), "memory": rng.choice(MEMORY[memory_size])}
        spec: dict[str, Any] = {
            "containers": [{**PAUSE, "resources": {"requests": {k: v for k, v in requests.items() if v}}}]
        }
        tolerations = [_toleration(rng) for _ in range(rng.choice([0, 0, 1, 2]))]
        if tolerations:
            spec["tolerations"] = tolerations
        if rng.random() < 0.35:
            spec["nodeSelector"] = {"disk": rng.choice(["ssd", "hdd", "nvme"])}
        affinity: dict[str, Any] = {}
        if rng.random() < 0.25:
            expression = {"key": "zone", "operator": rng.choice(["In", "NotIn"]), "values": [rng.choice(["z1", "z2"])]}
            affinity["nodeAffinity"] = {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [expression]}]
                }
            }
        if rng.random() < 0.2:
            affinity["podAffinity"] = _required([_term(rng, "role", ROLES) for _ in range(rng.choice([1, 1, 2]))])
        if rng.random() < 0.3:
            affinity["podAntiAffinity"] = _required([_term(rng, "role", ROLES)])
        if affinity:
            spec["affinity"] = affinity
        if rng.random() < 0.3:
            spec["topologySpreadConstraints"] = [
                {
                    "maxSkew": rng.choice([1, 1, 2]),
                    "topologyKey": rng.choice(TOPOLOGY_KEYS),
                    "whenUnsatisfiable": "DoNotSchedule",
                    "labelSelector": {"matchLabels": {"role": rng.choice(ROLES)}},
                }
            ]
        pods.append({"name": f"p{i:02}", "labels": {"team": rng.choice(TEAMS)}, "spec": spec})
    return nodes, anchors, pods


def _required(terms: list[dict[str, Any]]) -> dict[str, Any]:
    return {"requiredDuringSchedulingIgnoredDuringExecution": terms}


def _term(rng: random.Random, label: str, values: list[str]) -> dict[str, Any]:
    return {"labelSelector": {"matchLabels": {label: rng.choice(values)}}, "topologyKey": rng.choice(TOPOLOGY_KEYS)}


def _toleration(rng: random.Random) -> dict[str, str]:
    kind = rng.choice(["exists", "equal", "equal-any-effect", "cordon", "everything"])
    key, value = rng.choice(TAINTS)
    if kind == "exists":
        return {"key": key, "operator": "Exists", "effect": rng.choice(EFFECTS)}
    if kind == "equal":
        return {"key": key, "operator": "Equal", "value": value, "effect": rng.choice(EFFECTS)}
    if kind == "equal-any-effect":
        return {"key": key, "value": rng.choice([value, "other"])}
    if kind == "cordon":
        return {"key": CORDON, "operator": "Exists", "effect": "NoSchedule"}
    return {"operator": "Exists"}


def outcomes(env: Env, namespace: str) -> dict[str, str | None] | None:
    """pod → None once placed, or its PodScheduled=False message; None until every pod has one or the other."""
    result: dict[str, str | None] = {}
    for pod in env.core.list_namespaced_pod(namespace, label_selector="team").items:
        name = PodRef.of(pod).name
        if node_name(pod):
            result[name] = None
            continue
        condition = next((c for c in conditions(pod) if c.type == "PodScheduled"), None)
        if condition is None or condition.status != "False":
            return None
        result[name] = condition.message
    return result if len(result) == PODS else None


def create(
    env: Env,
    namespace: str,
    scheduler: str,
    *,
    nodes: list[str],
    anchors: list[dict[str, Any]],
    pods: list[dict[str, Any]],
) -> None:
    for anchor in anchors:
        spec = {"containers": [PAUSE], "nodeName": nodes[anchor["node"]], "schedulerName": "nobody"}
        if "affinity" in anchor:
            spec["affinity"] = anchor["affinity"]
        manifest = {"metadata": {"name": anchor["name"], "labels": anchor["labels"]}, "spec": spec}
        env.core.create_namespaced_pod(namespace, body(manifest), _preload_content=False)
    for pod in pods:
        manifest = {
            "metadata": {"name": pod["name"], "labels": pod["labels"]},
            "spec": {**pod["spec"], "schedulerName": scheduler},
        }
        env.core.create_namespaced_pod(namespace, body(manifest), _preload_content=False)


def test_feasibility_agrees_with_kube_scheduler(env: Env, tmp_path: Path) -> None:
    nodes, anchors, pods = scenario(random.Random(SEED))
    node_names = [env.node(**node) for node in nodes]
    kube_name, kube_namespace = unique("kube"), unique("t-kube")
    env.core.create_namespace(body({"metadata": {"name": kube_namespace}}))
    try:
        create(env, env.namespace, env.scheduler_name, nodes=node_names, anchors=anchors, pods=pods)
        create(env, kube_namespace, kube_name, nodes=node_names, anchors=anchors, pods=pods)
        with (
            kube_scheduler(env.cluster.kubeconfig, kube_name, tmp_path) as kube_log,
            env.scheduler("--interval", "0.3"),
        ):
            ours = wait_for(lambda: outcomes(env, env.namespace), timeout=40, what="our scheduler to decide every pod")
            theirs = wait_for(
                lambda: outcomes(env, kube_namespace), timeout=40, what=f"kube-scheduler to decide (log: {kube_log})"
            )
        placed = [p for p, why in theirs.items() if why is None]
        assert 3 <= len(placed) <= PODS - 3, f"the scenario should mix feasible and infeasible pods: {theirs}"
        disagreements = {
            name: {"ours": ours[name] or "placed", "kube-scheduler": theirs[name] or "placed"}
            for name in sorted(theirs)
            if (ours[name] is None) != (theirs[name] is None)
        }
        scenario_text = {"nodes": dict(zip(node_names, nodes, strict=True)), "anchors": anchors, "pods": pods}
        assert not disagreements, yaml.safe_dump({"disagreements": disagreements, **scenario_text})
    finally:
        env.core.delete_collection_namespaced_pod(kube_namespace, grace_period_seconds=0)
        env.core.delete_namespace(kube_namespace, _preload_content=False)
