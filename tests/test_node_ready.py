import pytest
from kubernetes.client import V1Node, V1NodeCondition, V1Toleration

from policies.framework import Code
from policies.node_ready import NodeReady
from tests.builders import node, node_info, pod, state, tol

NOT_READY = "node(s) had untolerated taint {node.kubernetes.io/not-ready: }"
UNREACHABLE = "node(s) had untolerated taint {node.kubernetes.io/unreachable: }"


def no_status() -> V1Node:
    bare = node()
    bare.status = None
    return bare


@pytest.mark.parametrize(
    "the_node, tolerations, reason",
    [
        pytest.param(node(ready=True), [], None, id="a Ready node takes pods"),
        pytest.param(node(ready=False), [], NOT_READY, id="a NotReady node is rejected as if tainted not-ready"),
        pytest.param(
            node(ready=None),
            [],
            NOT_READY,
            id="a node without a Ready condition is not ready yet, as TaintNodesByCondition marks a new node",
        ),
        pytest.param(no_status(), [], NOT_READY, id="a node without status is not ready yet"),
        pytest.param(
            node(ready="Unknown"),
            [],
            UNREACHABLE,
            id="an Unknown Ready condition is rejected as unreachable, as the node lifecycle controller taints it",
        ),
        pytest.param(
            node(ready=False),
            [tol("node.kubernetes.io/not-ready", "Exists", effect="NoSchedule")],
            None,
            id="a pod tolerating not-ready passes",
        ),
        pytest.param(node(ready=False), [tol(op="Exists")], None, id="a wildcard toleration passes"),
        pytest.param(
            node(ready=False),
            [tol("node.kubernetes.io/not-ready", "Exists", effect="NoExecute")],
            NOT_READY,
            id="tolerating only NoExecute not-ready is not enough",
        ),
        pytest.param(
            node(ready="Unknown"),
            [tol("node.kubernetes.io/unreachable", "Exists")],
            None,
            id="a pod tolerating unreachable passes an Unknown node",
        ),
        pytest.param(
            node(ready="Unknown"),
            [tol("node.kubernetes.io/not-ready", "Exists")],
            UNREACHABLE,
            id="tolerating not-ready does not cover unreachable",
        ),
    ],
)
def test_filter(the_node: V1Node, tolerations: list[V1Toleration], reason: str | None) -> None:
    info = node_info(the_node)
    status = NodeReady().filter(pod(tolerations=tolerations), info, state(info))
    assert status.reasons == ((reason,) if reason else ())
    # Unresolvable, as kube's TaintToleration is for the taint: preemption cannot make a node ready.
    assert status.code is (Code.UNRESOLVABLE if reason else Code.SUCCESS)


def test_other_conditions_do_not_matter() -> None:
    the_node = node(ready=True)
    assert the_node.status is not None and the_node.status.conditions is not None
    the_node.status.conditions.insert(0, V1NodeCondition(type="MemoryPressure", status="True"))
    info = node_info(the_node)
    assert NodeReady().filter(pod(), info, state(info)).ok
