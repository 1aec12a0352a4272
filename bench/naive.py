"""The baseline every Python scheduler starts from: what a first lab or tutorial writes.

    python bench/naive.py --scheduler-name NAME [--kubeconfig PATH]

Loop: list every pod; for each pending pod of ours, list every node and every pod again (as client models),
pick the node with the fewest pods among those it may use (taints, nodeSelector and requests ≤ allocatable,
via bench/placement.py, so it places correctly and the comparison is about speed), bind, one pod at a time.
The binding call is the tutorial one, including its famous workaround: the client raises while reading the
server's Status reply *after* the binding succeeded (kubernetes-client/python #547), so ValueError is ignored.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading

from kubernetes import client, config
from placement import Usage, fits, needs_of, offer_of


def pick_node(pod: client.V1Pod, nodes: list[client.V1Node], pods: list[client.V1Pod]) -> str | None:
    used: dict[str, Usage] = {}
    for other in map(needs_of, pods):
        if other.node_name:
            used.setdefault(other.node_name, Usage()).add(other)
    needs = needs_of(pod)
    offers = [offer_of(node) for node in nodes]
    candidates = [(used.get(o.name, Usage()).pods, o.name) for o in offers if fits(needs, o, used.get(o.name, Usage()))]
    return min(candidates)[1] if candidates else None


def bind(v1: client.CoreV1Api, pod: client.V1Pod, node: str) -> None:
    needs = needs_of(pod)
    body = client.V1Binding(
        metadata=client.V1ObjectMeta(name=needs.name),
        target=client.V1ObjectReference(api_version="v1", kind="Node", name=node),
    )
    # The reply is a Status, not a Binding: ValueError here means the bind worked.
    with contextlib.suppress(ValueError):
        v1.create_namespaced_binding(needs.namespace, body)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scheduler-name", required=True)
    parser.add_argument("--kubeconfig")
    args = parser.parse_args()
    config.load_kube_config(config_file=args.kubeconfig)
    v1 = client.CoreV1Api()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.is_set():
        pending = [
            p
            for p in v1.list_pod_for_all_namespaces().items
            if p.spec and p.spec.scheduler_name == args.scheduler_name and not p.spec.node_name
        ]
        for pod in pending:
            if stop.is_set():
                break
            node = pick_node(pod, v1.list_node().items, v1.list_pod_for_all_namespaces().items)
            if node is not None:
                bind(v1, pod, node)
        if not pending:
            stop.wait(1.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
