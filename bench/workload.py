"""The simulated cluster and pods every contender gets: the same nodes, the same pod specs, only the namespace
and schedulerName differ.

Nodes: 4 CPU / 16Gi / 110 pods (hack/nodes.py's defaults), spread over 3 zones; every 10th node carries a
`dedicated=infra:NoSchedule` taint. Pods: one container with a mix of requests (100m..500m CPU,
128Mi..512Mi); every 10th pod has a nodeSelector for zone-0, every 20th tolerates the taint. That keeps the
filters honest (taints, selectors, capacity) while every scenario fits comfortably, so a violation or an
unbound pod is the contender's fault, not the workload's.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hack"))
from nodes import node_manifest

ZONE_LABEL = "topology.kubernetes.io/zone"
ZONES = 3
TAINT = {"key": "dedicated", "value": "infra", "effect": "NoSchedule"}
NODE_NAME = re.compile(r"^bench-node-\d{5}$")
# Which workload's nodes a bench node is: scenarios of one invocation share the cluster, and a node of another
# shape (say, the tainted 16Gi bench nodes before a scheduler_perf workload) is replaced, not reused.
SHAPE_LABEL = "bench-shape"
BENCH_SHAPE = "bench"
CPU_REQUESTS = ("100m", "250m", "200m", "500m")
MEMORY_REQUESTS = ("128Mi", "256Mi", "512Mi")


def node_name(i: int) -> str:
    return f"bench-node-{i:05d}"


def node_body(i: int) -> dict[str, Any]:
    body: dict[str, Any] = node_manifest(
        node_name(i),
        labels={ZONE_LABEL: f"zone-{i % ZONES}", "bench": "true", SHAPE_LABEL: BENCH_SHAPE},
        taints=[TAINT] if i % 10 == 0 else None,
    )
    return body


def pod_name(i: int) -> str:
    return f"pod-{i:06d}"


def pod_body(i: int, namespace: str, scheduler_name: str, name: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "schedulerName": scheduler_name,
        "terminationGracePeriodSeconds": 0,
        "containers": [
            {
                "name": "app",
                "image": "registry.k8s.io/pause:3.10",
                "resources": {
                    "requests": {
                        "cpu": CPU_REQUESTS[i % len(CPU_REQUESTS)],
                        "memory": MEMORY_REQUESTS[i % len(MEMORY_REQUESTS)],
                    }
                },
            }
        ],
    }
    if i % 10 == 3:
        spec["nodeSelector"] = {ZONE_LABEL: "zone-0"}
    if i % 20 == 5:
        spec["tolerations"] = [
            {"key": TAINT["key"], "operator": "Equal", "value": TAINT["value"], "effect": "NoSchedule"}
        ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name or pod_name(i), "namespace": namespace, "labels": {"app": "bench"}},
        "spec": spec,
    }


def pod_bytes(i: int, namespace: str, scheduler_name: str, name: str | None = None) -> bytes:
    return json.dumps(pod_body(i, namespace, scheduler_name, name), separators=(",", ":")).encode()


# --- the preemption scenario: kube's scheduler_perf PreemptionBasic -----------------------------------------
# test/integration/scheduler_perf/default_preemption/performance-config.yaml (PreemptionBasic) with the pod
# templates templates/pod-low-priority.yaml and default_preemption/templates/pod-high-priority.yaml: four
# 900m low pods fill a 4-CPU node to 3600m, and a 3970m preemptor fits only once all four are gone.
LOW_CPU, LOW_MEMORY, LOW_IMAGE = "900m", "500Mi", "registry.k8s.io/pause:3.10.1"
HIGH_CPU, HIGH_MEMORY, HIGH_IMAGE = "3970m", "500Mi", "registry.k8s.io/pause:3.10.2"
LOW_PER_NODE = 4
# pod-high-priority.yaml sets `priority: 9999999`; our API server runs the Priority admission plugin, which
# rejects a pod that sets spec.priority itself, so the value comes from a PriorityClass the harness creates.
PREEMPTOR_PRIORITY = 9999999


HIGH_PREFIX = "high-"


def low_pod_name(i: int) -> str:
    return f"low-{i:06d}"


def high_pod_name(i: int) -> str:
    return f"{HIGH_PREFIX}{i:06d}"


def priority_class_body(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "scheduling.k8s.io/v1",
        "kind": "PriorityClass",
        "metadata": {"name": name},
        "value": PREEMPTOR_PRIORITY,
        "description": "my-scheduler bench: the preemption scenario's preemptors",
    }


def _preemption_pod(
    name: str, namespace: str, scheduler_name: str, *, cpu: str, memory: str, image: str
) -> dict[str, Any]:
    """scheduler_perf's pod (limits = requests, grace 0: there is no kubelet to confirm a graceful deletion),
    plus our schedulerName and a toleration of the bench nodes' taint: every node takes four low pods, as
    scheduler_perf's untainted nodes do."""
    resources = {"cpu": cpu, "memory": memory}
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": "bench"}},
        "spec": {
            "schedulerName": scheduler_name,
            "terminationGracePeriodSeconds": 0,
            "tolerations": [
                {"key": TAINT["key"], "operator": "Equal", "value": TAINT["value"], "effect": "NoSchedule"}
            ],
            "containers": [
                {
                    "name": "pause",
                    "image": image,
                    "resources": {"limits": resources, "requests": resources},
                }
            ],
        },
    }


def low_pod_bytes(i: int, namespace: str, scheduler_name: str) -> bytes:
    """templates/pod-low-priority.yaml: no priority (0, as no PriorityClass is a global default)."""
    body = _preemption_pod(low_pod_name(i), namespace, scheduler_name, cpu=LOW_CPU, memory=LOW_MEMORY, image=LOW_IMAGE)
    body["spec"]["containers"][0]["ports"] = [{"containerPort": 80}]
    return json.dumps(body, separators=(",", ":")).encode()


def high_pod_bytes(i: int, namespace: str, scheduler_name: str, priority_class: str) -> bytes:
    """default_preemption/templates/pod-high-priority.yaml, its priority through `priority_class`."""
    body = _preemption_pod(
        high_pod_name(i), namespace, scheduler_name, cpu=HIGH_CPU, memory=HIGH_MEMORY, image=HIGH_IMAGE
    )
    body["spec"]["priorityClassName"] = priority_class
    return json.dumps(body, separators=(",", ":")).encode()


# --- kube's scheduler_perf workloads -------------------------------------------------------------------------
# test/integration/scheduler_perf/ at v1.37.2: misc/performance-config.yaml (SchedulingBasic),
# topology_spreading/performance-config.yaml (TopologySpreading), affinity/performance-config.yaml
# (SchedulingPodAntiAffinity, SchedulingNodeAffinity), their "performance" 5000-node workloads; the templates are
# templates/node-default.yaml and templates/pod-*.yaml, copied below field by field.
PERF_NODES = 5000
PERF_IMAGE = "registry.k8s.io/pause:3.10.2"
HOSTNAME_LABEL = "kubernetes.io/hostname"


@dataclass(frozen=True, slots=True)
class PerfWorkload:
    """One scheduler_perf workload: its nodes' zone labels, the templates of its init pods (created and bound
    before the measured phase) and of its measured pods, and its sizes at 5,000 nodes."""

    name: str  # scheduler_perf's test case and workload
    zones: tuple[str, ...]  # labelNodePrepareStrategy's values of topology.kubernetes.io/zone, round robin; () none
    init_template: str
    measured_template: str
    init_pods: int
    measured_pods: int
    threshold: int  # the workload's `threshold` in the yaml: the minimum average pods/s kube's CI expects

    @property
    def shape(self) -> str:
        return "perf" + "".join(f".{z}" for z in self.zones)

    def sizes(self, nodes: int) -> tuple[int, int]:
        """Init and measured pods at `nodes` nodes: scheduler_perf's counts scaled by nodes / 5,000."""
        scale = nodes / PERF_NODES
        return max(1, round(self.init_pods * scale)), max(1, round(self.measured_pods * scale))


PERF_WORKLOADS = {
    "sched-basic": PerfWorkload("SchedulingBasic/5000Nodes_10000Pods", (), "default", "default", 1000, 10000, 680),
    "topology-spreading": PerfWorkload(
        "TopologySpreading/5000Nodes_5000Pods", ("moon-1", "moon-2", "moon-3"), "default", "topology-spreading",
        5000, 5000, 460,
    ),
    "pod-anti-affinity": PerfWorkload(
        "SchedulingPodAntiAffinity/5000Nodes_2000Pods", (), "pod-anti-affinity", "pod-anti-affinity", 1000, 2000, 180
    ),
    "node-affinity": PerfWorkload(
        "SchedulingNodeAffinity/5000Nodes_10000Pods", ("zone1",), "node-affinity", "node-affinity", 5000, 10000, 540
    ),
}  # fmt: skip


def perf_node_body(i: int, zones: tuple[str, ...]) -> dict[str, Any]:
    """templates/node-default.yaml (4 CPU, 32Gi, 110 pods, Ready; allocatable = capacity, as the API server
    defaults it), with the hostname label scheduler_perf's node_util.go adds and, for workloads with a
    labelNodePrepareStrategy, the zone label of node i (round robin over the values, as runners.go does)."""
    shape = "perf" + "".join(f".{z}" for z in zones)
    labels = {SHAPE_LABEL: shape, "bench": "true", **({ZONE_LABEL: zones[i % len(zones)]} if zones else {})}
    body: dict[str, Any] = node_manifest(node_name(i), memory="32Gi", labels=labels)
    return body


def perf_pod_body(
    template: str, i: int, namespace: str, scheduler_name: str, *, namespaces: tuple[str, ...] = ()
) -> dict[str, Any]:
    """scheduler_perf's pod template `template` (templates/pod-<template>.yaml) as pod i of `namespace`, with our
    schedulerName. `namespaces`: the pod-anti-affinity template's term lists scheduler_perf's two namespaces
    (["sched-1", "sched-0"]: measured, init); ours are named per run."""
    resources = {"cpu": "100m", "memory": "500Mi"}
    labels: dict[str, str] = {}
    spec: dict[str, Any] = {"schedulerName": scheduler_name}
    if template == "pod-anti-affinity":
        labels = {"color": "green"}
        term = {"labelSelector": {"matchLabels": {"color": "green"}}, "topologyKey": HOSTNAME_LABEL,
                "namespaces": list(namespaces)}  # fmt: skip
        spec["affinity"] = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [term]}}
    elif template == "node-affinity":
        requirement = {"key": ZONE_LABEL, "operator": "In", "values": ["zone1", "zone2"]}
        spec["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": [requirement]}]
                }
            }
        }
    elif template == "topology-spreading":
        labels = {"color": "blue"}
        spec["topologySpreadConstraints"] = [
            {"maxSkew": 5, "topologyKey": ZONE_LABEL, "whenUnsatisfiable": "DoNotSchedule",
             "labelSelector": {"matchLabels": {"color": "blue"}}}
        ]  # fmt: skip
    elif template != "default":
        raise ValueError(f"unknown scheduler_perf pod template {template!r}")
    spec["containers"] = [
        {
            "image": PERF_IMAGE,
            "name": "pause",
            "ports": [{"containerPort": 80}],
            "resources": {"limits": resources, "requests": dict(resources)},
        }
    ]
    metadata: dict[str, Any] = {"name": pod_name(i), "namespace": namespace}
    if labels:
        metadata["labels"] = labels
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


def perf_pod_bytes(
    template: str, i: int, namespace: str, scheduler_name: str, *, namespaces: tuple[str, ...] = ()
) -> bytes:
    body = perf_pod_body(template, i, namespace, scheduler_name, namespaces=namespaces)
    return json.dumps(body, separators=(",", ":")).encode()
