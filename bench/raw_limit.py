"""The ceiling for a Python scheduler on this API server: no decisions, no models, only Bindings.

    python bench/raw_limit.py --scheduler-name NAME [--kubeconfig PATH] [--threads 16]

One LIST of the pending pods and one of the nodes (raw JSON), a round-robin assignment over the nodes each pod
may use (precomputed, so placements stay valid: taints, nodeSelector, capacity), then POSTs of the Bindings
on as many threads as our scheduler binds with (its --parallelism, 16). Exits when every pod is bound; prints
a JSON summary on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from placement import Needs, Offer, Usage, fits, needs_from_dict, offer_from_dict
from rawkube import RawKube, binding_body, in_parallel, pods_path


def round_robin(pods: list[Needs], nodes: list[Offer]) -> list[tuple[Needs, str]]:
    """Each pod to the next node (in name order) it may use, keeping track of what is already requested."""
    nodes = sorted(nodes, key=lambda o: o.name)
    used = {o.name: Usage() for o in nodes}
    plan = []
    cursor = 0
    for needs in pods:
        for step in range(len(nodes)):
            offer = nodes[(cursor + step) % len(nodes)]
            if fits(needs, offer, used[offer.name]):
                used[offer.name].add(needs)
                plan.append((needs, offer.name))
                cursor = (cursor + step + 1) % len(nodes)
                break
    return plan


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scheduler-name", required=True)
    parser.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"))
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()
    started = time.monotonic()
    kube = RawKube(args.kubeconfig, pool_size=args.threads)
    selector = f"spec.schedulerName={args.scheduler_name},spec.nodeName="
    items = kube.get("/api/v1/pods", fieldSelector=selector)["items"]
    pending = [needs_from_dict(p) for p in items]
    uids = {(p["metadata"]["namespace"], p["metadata"]["name"]): p["metadata"]["uid"] for p in items}
    nodes = [offer_from_dict(n) for n in kube.get("/api/v1/nodes")["items"]]
    plan = round_robin(pending, nodes)
    bodies = [
        (pods_path(n.namespace, n.name, "binding"), binding_body(n.namespace, n.name, uids[n.namespace, n.name], node))
        for n, node in plan
    ]
    planned = time.monotonic()
    in_parallel(lambda i: kube.post(*bodies[i], attempts=3), len(bodies), args.threads)
    summary = {
        "pending": len(pending),
        "bound": len(bodies),
        "plan_seconds": round(planned - started, 3),
        "bind_seconds": round(time.monotonic() - planned, 3),
    }
    print(json.dumps(summary))
    return 0 if len(bodies) == len(pending) else 1


if __name__ == "__main__":
    sys.exit(main())
