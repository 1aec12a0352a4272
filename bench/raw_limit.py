"""The ceiling for a Python scheduler on this API server: no decisions, no models, only Bindings (and, with
--events, the Scheduled event a scheduler also writes for each pod).

    python bench/raw_limit.py --scheduler-name NAME [--kubeconfig PATH] [--threads 16] [--events]

One LIST of the pending pods, one of the bound pods and one of the nodes (raw JSON), a round-robin assignment
over the nodes each pod may use (precomputed, so placements stay valid: taints, nodeSelector, node affinity,
capacity, required pod anti-affinity), then POSTs of the Bindings on as many threads as our scheduler binds
with (its --parallelism, 16); with --events each thread POSTs the pod's events.k8s.io/v1 Scheduled event right
after its Binding, so the ceiling counts both writes. Exits when every pod is bound; prints a JSON summary on
stdout.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import socket
import sys
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from placement import Needs, Occupancy, Offer, needs_from_dict, offer_from_dict
from rawkube import RawKube, binding_body, in_parallel, pods_path


def round_robin(pods: list[Needs], nodes: list[Offer], bound: Iterable[Needs] = ()) -> list[tuple[Needs, str]]:
    """Each pod to the next node (in name order) it may use, keeping track of what is already requested and of
    required pod anti-affinity, with the `bound` pods already there."""
    nodes = sorted(nodes, key=lambda o: o.name)
    occupancy = Occupancy(nodes)
    for needs in bound:
        if needs.node_name in occupancy.offers:
            occupancy.add(needs, needs.node_name)
    plan = []
    cursor = 0
    for needs in pods:
        for step in range(len(nodes)):
            offer = nodes[(cursor + step) % len(nodes)]
            if occupancy.fits(needs, offer):
                occupancy.add(needs, offer.name)
                plan.append((needs, offer.name))
                cursor = (cursor + step + 1) % len(nodes)
                break
    return plan


def scheduled_event_body(
    pod: dict[str, Any], node: str, reporting_controller: str, reporting_instance: str, now_ns: int
) -> bytes:
    """kube-scheduler's Scheduled event for a bound pod, as its events.k8s.io recorder builds it: the note of
    pkg/scheduler/schedule_one.go (`Successfully assigned %v/%v to %v`, type Normal, reason Scheduled, action
    Binding); the name, eventTime (MicroTime: microseconds, UTC), reporting fields and the series-less form of
    client-go tools/events/event_recorder.go makeEvent, the name as tools/record/util GenerateEventName
    (`<pod>.<unix nanoseconds in hex>`), reportingInstance `<controller>-<hostname>` as event_broadcaster.go's
    NewRecorder, `regarding` as tools/reference GetReference of the pod (kind, namespace, name, uid,
    apiVersion, resourceVersion). Fields Go leaves empty (related, annotations, deprecated*) are left out."""
    meta = pod["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    # Go's Format truncates to the microsecond; a float of the nanoseconds would round.
    seconds, nanos = divmod(now_ns, 10**9)
    when = datetime.datetime.fromtimestamp(seconds, datetime.UTC).replace(microsecond=nanos // 1000)
    body = {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": f"{name}.{now_ns:x}", "namespace": namespace},
        "eventTime": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "reportingController": reporting_controller,
        "reportingInstance": reporting_instance,
        "action": "Binding",
        "reason": "Scheduled",
        "regarding": {
            "kind": "Pod",
            "namespace": namespace,
            "name": name,
            "uid": meta["uid"],
            "apiVersion": "v1",
            "resourceVersion": meta["resourceVersion"],
        },
        "note": f"Successfully assigned {namespace}/{name} to {node}",
        "type": "Normal",
    }
    return json.dumps(body, separators=(",", ":")).encode()


def events_path(namespace: str) -> str:
    return f"/apis/events.k8s.io/v1/namespaces/{quote(namespace)}/events"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scheduler-name", required=True)
    parser.add_argument("--kubeconfig", default=os.environ.get("KUBECONFIG"))
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--events", action="store_true", help="also POST each pod's Scheduled event")
    args = parser.parse_args()
    started = time.monotonic()
    kube = RawKube(args.kubeconfig, pool_size=args.threads)
    selector = f"spec.schedulerName={args.scheduler_name},spec.nodeName="
    items = kube.get("/api/v1/pods", fieldSelector=selector)["items"]
    pending = [needs_from_dict(p) for p in items]
    by_key = {(p["metadata"]["namespace"], p["metadata"]["name"]): p for p in items}
    bound = [needs_from_dict(p) for p in kube.get("/api/v1/pods", fieldSelector="spec.nodeName!=")["items"]]
    nodes = [offer_from_dict(n) for n in kube.get("/api/v1/nodes")["items"]]
    plan = round_robin(pending, nodes, bound)
    pods = [by_key[n.namespace, n.name] for n, _ in plan]
    bodies = [
        (pods_path(n.namespace, n.name, "binding"), binding_body(n.namespace, n.name, pod["metadata"]["uid"], node))
        for (n, node), pod in zip(plan, pods, strict=True)
    ]
    controller = args.scheduler_name
    instance = f"{controller}-{socket.gethostname()}"

    def write(i: int) -> None:
        kube.post(*bodies[i], attempts=3)
        if args.events:
            needs, node = plan[i]
            event = scheduled_event_body(pods[i], node, controller, instance, time.time_ns())
            kube.post(events_path(needs.namespace), event, attempts=3)

    planned = time.monotonic()
    in_parallel(write, len(bodies), args.threads)
    summary = {
        "pending": len(pending),
        "bound": len(bodies),
        "events": len(bodies) if args.events else 0,
        "plan_seconds": round(planned - started, 3),
        "bind_seconds": round(time.monotonic() - planned, 3),
    }
    print(json.dumps(summary))
    return 0 if len(bodies) == len(pending) else 1


if __name__ == "__main__":
    sys.exit(main())
