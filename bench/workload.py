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
