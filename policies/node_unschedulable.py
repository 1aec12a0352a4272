"""NodeUnschedulable: cordoned nodes (spec.unschedulable) take no new pods, unless the pod tolerates the
`node.kubernetes.io/unschedulable:NoSchedule` taint (as DaemonSet pods do)."""

from __future__ import annotations

from typing import ClassVar

from kubernetes.client import V1Pod, V1Taint

from policies.framework import SUCCESS, CycleState, NodeInfo, Status, unresolvable
from policies.taint_toleration import tolerated

UNSCHEDULABLE = "node(s) were unschedulable"
_CORDON_TAINT = V1Taint(key="node.kubernetes.io/unschedulable", effect="NoSchedule")


class NodeUnschedulable:
    name = "NodeUnschedulable"
    node_only: ClassVar[bool] = True  # reads only the pod's spec and the node object (FilterCache)

    def filter(self, pod: V1Pod, node: NodeInfo, state: CycleState) -> Status:
        # Unresolvable: evicting pods does not uncordon a node (nodeunschedulable/node_unschedulable.go).
        return unresolvable(UNSCHEDULABLE) if node.unschedulable and not tolerated(pod, _CORDON_TAINT) else SUCCESS
