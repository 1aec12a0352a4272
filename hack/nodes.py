"""Create simulated nodes: Node objects with status, no kubelet (as kube's scheduler_perf does).

    python hack/nodes.py 100 --prefix node --cpu 4 --memory 16Gi --zones 3
    python hack/nodes.py 1 --prefix gpu --extended nvidia.com/gpu=2 --taint gpu=true:NoSchedule
    python hack/nodes.py 1 --prefix cordoned --cordoned        # or --not-ready

Nodes are POSTed concurrently with their status set on create (the API server accepts status on create).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from kubernetes import client, config


def node_manifest(
    name: str,
    *,
    cpu: str = "4",
    memory: str = "16Gi",
    pods: str = "110",
    ephemeral_storage: str = "100Gi",
    extended: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    taints: list[dict[str, str]] | None = None,
    ready: bool = True,
    cordoned: bool = False,
    images: list[tuple[list[str], int]] | None = None,
) -> dict[str, Any]:
    """A Node with its status; `images` are the node's `status.images` (names, sizeBytes)."""
    resources = {"cpu": cpu, "memory": memory, "pods": pods, "ephemeral-storage": ephemeral_storage, **(extended or {})}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", **(labels or {})},
        },
        "spec": {"taints": taints or [], "unschedulable": cordoned},
        "status": {
            "capacity": resources,
            "allocatable": resources,
            "conditions": [{"type": "Ready", "status": "True" if ready else "False", "reason": "Simulated"}],
            **({"images": [{"names": names, "sizeBytes": size} for names, size in images]} if images else {}),
        },
    }


def parse_taint(text: str) -> dict[str, str]:
    """`key=value:Effect` or `key:Effect`, as `kubectl taint` writes them."""
    spec, _, effect = text.rpartition(":")
    key, _, value = spec.partition("=")
    if not key or effect not in ("NoSchedule", "PreferNoSchedule", "NoExecute"):
        raise argparse.ArgumentTypeError(
            f"taint must be key[=value]:NoSchedule|PreferNoSchedule|NoExecute, got {text!r}"
        )
    return {"key": key, "value": value, "effect": effect} if value else {"key": key, "effect": effect}


def parse_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return key, value


def create_nodes(core: client.CoreV1Api, manifests: list[dict[str, Any]], workers: int = 16) -> None:
    def post(manifest: dict[str, Any]) -> None:
        response: Any = core.create_node(client.V1Node.from_dict(manifest), _preload_content=False)  # type: ignore[arg-type]
        response.read()  # read and release, or the next POST pays for a new TLS connection
        response.release_conn()

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(post, manifests))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("count", type=int)
    parser.add_argument("--prefix", default="node")
    parser.add_argument("--cpu", default="4")
    parser.add_argument("--memory", default="16Gi")
    parser.add_argument("--pods", default="110")
    parser.add_argument("--ephemeral-storage", default="100Gi")
    parser.add_argument("--extended", type=parse_pair, action="append", default=[], help="e.g. nvidia.com/gpu=2")
    parser.add_argument("--label", type=parse_pair, action="append", default=[], help="key=value, repeatable")
    parser.add_argument("--zones", type=int, default=0, help="spread topology.kubernetes.io/zone over zone-0..N-1")
    parser.add_argument("--taint", type=parse_taint, action="append", default=[], help="key=value:Effect")
    parser.add_argument("--not-ready", action="store_true")
    parser.add_argument("--cordoned", action="store_true")
    parser.add_argument("--workers", type=int, default=16)
    args = parser.parse_args(argv)

    config.load_kube_config()
    configuration = client.Configuration.get_default_copy()
    configuration.connection_pool_maxsize = args.workers
    core = client.CoreV1Api(client.ApiClient(configuration))
    manifests = []
    for i in range(args.count):
        labels = dict(args.label)
        if args.zones:
            labels["topology.kubernetes.io/zone"] = f"zone-{i % args.zones}"
        manifests.append(
            node_manifest(
                f"{args.prefix}-{i}" if args.count > 1 or args.prefix == "node" else args.prefix,
                cpu=args.cpu,
                memory=args.memory,
                pods=args.pods,
                ephemeral_storage=args.ephemeral_storage,
                extended=dict(args.extended),
                labels=labels,
                taints=args.taint,
                ready=not args.not_ready,
                cordoned=args.cordoned,
            )
        )
    started = time.perf_counter()
    create_nodes(core, manifests, args.workers)
    print(json.dumps({"created": args.count, "seconds": round(time.perf_counter() - started, 2)}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
