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
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "hack"))
from nodes import node_manifest

ZONE_LABEL = "topology.kubernetes.io/zone"
ZONES = 3
TAINT = {"key": "dedicated", "value": "infra", "effect": "NoSchedule"}
NODE_NAME = re.compile(r"^bench-node-\d{5}$")
CPU_REQUESTS = ("100m", "250m", "200m", "500m")
MEMORY_REQUESTS = ("128Mi", "256Mi", "512Mi")


def node_name(i: int) -> str:
    return f"bench-node-{i:05d}"


def node_body(i: int) -> dict[str, Any]:
    body: dict[str, Any] = node_manifest(
        node_name(i),
        labels={ZONE_LABEL: f"zone-{i % ZONES}", "bench": "true"},
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
