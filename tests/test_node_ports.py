import pytest
from kubernetes.client import V1Pod

from policies.node_ports import NO_FREE_PORTS, NodePorts
from tests.builders import Json, container, node, node_info, pod, port, sidecar, state


@pytest.mark.parametrize(
    "wanted, used, fits",
    [
        pytest.param([], [port(80)], True, id="a pod without host ports fits anywhere"),
        pytest.param([port(80)], [], True, id="a free node"),
        pytest.param([port(80)], [port(80)], False, id="the same port"),
        pytest.param([port(80)], [port(81)], True, id="another port"),
        pytest.param([port(53, protocol="UDP")], [port(53)], True, id="the same port over another protocol"),
        pytest.param([port(53, protocol="TCP")], [port(53)], False, id="TCP is the default protocol"),
        pytest.param([port(9, protocol="SCTP")], [port(9, protocol="SCTP")], False, id="SCTP clashes with SCTP"),
        pytest.param([port(80)], [port(80, ip="10.0.0.1")], False, id="0.0.0.0 clashes with a specific IP"),
        pytest.param([port(80, ip="10.0.0.1")], [port(80)], False, id="a specific IP clashes with 0.0.0.0"),
        pytest.param([port(80, ip="10.0.0.1")], [port(80, ip="0.0.0.0")], False, id="an explicit 0.0.0.0 clashes too"),
        pytest.param([port(80, ip="10.0.0.1")], [port(80, ip="10.0.0.1")], False, id="the same specific IP"),
        pytest.param([port(80, ip="10.0.0.1")], [port(80, ip="10.0.0.2")], True, id="two different specific IPs"),
        pytest.param(
            [port(80, ip="10.0.0.1", protocol="UDP")],
            [port(80)],
            True,
            id="0.0.0.0 clashes only within one protocol",
        ),
        pytest.param([port(0)], [port(0)], True, id="container ports without host ports never clash"),
        pytest.param([port(80), port(443)], [port(443)], False, id="one clash among several ports is enough"),
    ],
)
def test_filter(wanted: list[Json], used: list[Json], fits: bool) -> None:
    info = node_info(node(), [pod("running", host_ports=used)])
    status = NodePorts().filter(pod(host_ports=wanted), info, state(info))
    assert status.ok is fits
    assert status.reasons == (() if fits else (NO_FREE_PORTS,))


@pytest.mark.parametrize(
    "running, fits",
    [
        pytest.param(
            pod("r", containers=[container()], init=[sidecar(ports=[port(80)])]),
            False,
            id="a sidecar keeps its host port",
        ),
        pytest.param(
            pod("r", containers=[container()], init=[container(ports=[port(80)])]),
            True,
            id="a finished init container does not",
        ),
        pytest.param(
            pod("r", containers=[container(ports=[port(81)]), container(ports=[port(80)])]),
            False,
            id="any container of a running pod",
        ),
    ],
)
def test_which_containers_hold_ports(running: V1Pod, fits: bool) -> None:
    info = node_info(node(), [running])
    assert NodePorts().filter(pod(host_ports=[port(80)]), info, state(info)).ok is fits


def test_the_reason_is_kubes() -> None:
    assert NO_FREE_PORTS == "node(s) didn't have free ports for the requested pod ports"
