import pytest
from kubernetes.client import V1Toleration

from policies.framework import Code
from policies.node_unschedulable import UNSCHEDULABLE, NodeUnschedulable
from tests.builders import node, node_info, pod, state, tol

CORDON = "node.kubernetes.io/unschedulable"


@pytest.mark.parametrize(
    "unschedulable, tolerations, fits",
    [
        pytest.param(None, [], True, id="a node that was never cordoned"),
        pytest.param(False, [], True, id="an uncordoned node"),
        pytest.param(True, [], False, id="a cordoned node takes no new pods"),
        pytest.param(True, [tol(CORDON, "Exists", effect="NoSchedule")], True, id="a pod tolerating the cordon passes"),
        pytest.param(True, [tol(CORDON, "Exists")], True, id="a toleration for every effect of the cordon key"),
        pytest.param(True, [tol(op="Exists")], True, id="a wildcard toleration passes"),
        pytest.param(True, [tol(CORDON, "Exists", effect="NoExecute")], False, id="a NoExecute toleration does not"),
        pytest.param(True, [tol("other", "Exists")], False, id="a toleration for another key does not"),
    ],
)
def test_filter(unschedulable: bool | None, tolerations: list[V1Toleration], fits: bool) -> None:
    info = node_info(node(unschedulable=unschedulable))
    status = NodeUnschedulable().filter(pod(tolerations=tolerations), info, state(info))
    assert status.code is (Code.SUCCESS if fits else Code.UNRESOLVABLE)  # preemption cannot uncordon a node
    assert status.reasons == (() if fits else (UNSCHEDULABLE,))


def test_the_reason_is_kubes() -> None:
    assert UNSCHEDULABLE == "node(s) were unschedulable"


def test_a_node_without_spec_is_schedulable() -> None:
    bare = node()
    bare.spec = None
    info = node_info(bare)
    assert NodeUnschedulable().filter(pod(), info, state(info)).ok
