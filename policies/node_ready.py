"""NodeReady: a node whose Ready condition is not True takes no new pods.

In a real cluster the node lifecycle controller turns NotReady into the `node.kubernetes.io/not-ready`
taint and TaintToleration rejects the node; we read the condition itself (the taint may lag or, with no
controllers, never come) and answer as if the taint were there: same message, same toleration escape.
"""

from __future__ import annotations

from typing import ClassVar

from kubernetes.client import V1Pod, V1Taint

from policies.framework import SUCCESS, CycleState, NodeInfo, Status, unresolvable
from policies.taint_toleration import tolerated, untolerated_reason

NOT_READY = V1Taint(key="node.kubernetes.io/not-ready", effect="NoSchedule")
UNREACHABLE = V1Taint(key="node.kubernetes.io/unreachable", effect="NoSchedule")


class NodeReady:
    name = "NodeReady"
    node_only: ClassVar[bool] = True  # reads only the pod's spec and the node object (FilterCache)

    def filter(self, pod: V1Pod, node: NodeInfo, state: CycleState) -> Status:
        ready = node.ready
        if ready == "True":
            return SUCCESS
        # The node lifecycle controller maps Unknown to unreachable; a node that has not reported yet carries
        # not-ready from admission (TaintNodesByCondition), like one reporting False.
        taint = UNREACHABLE if ready == "Unknown" else NOT_READY
        # Unresolvable, as TaintToleration is for the taint kube would have put there.
        return SUCCESS if tolerated(pod, taint) else unresolvable(untolerated_reason(taint))
