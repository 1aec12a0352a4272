from collections import Counter

import pytest
from kubernetes.client import V1Node, V1Pod

from policies.resources import allocatable, host_ports, nonzero_requests, pod_requests, quantity
from tests.builders import container, node, pod, port, sidecar

GPU = "nvidia.com/gpu"
Mi, Gi = 1024**2, 1024**3


@pytest.mark.parametrize(
    "resource, text, expected",
    [
        pytest.param("cpu", "100m", 100, id="100m of CPU is 100 millicores"),
        pytest.param("cpu", "1", 1000, id="one CPU is 1000 millicores"),
        pytest.param("cpu", "0.5", 500, id="a decimal fraction of a CPU"),
        pytest.param("cpu", "1e3", 1_000_000, id="an exponent is a plain number, not a suffix"),
        pytest.param("cpu", "0", 0, id="zero CPU"),
        pytest.param("cpu", "0.1m", 1, id="a fraction of a millicore rounds up like MilliValue"),
        pytest.param("memory", "1.5Gi", 1536 * Mi, id="a fractional binary suffix"),
        pytest.param("memory", "512Ki", 512 * 1024, id="kibibytes"),
        pytest.param("memory", "1e3", 1000, id="a decimal exponent for memory"),
        pytest.param("memory", "1k", 1000, id="a decimal SI suffix"),
        pytest.param("memory", "128974848", 128974848, id="plain bytes"),
        pytest.param("memory", "0.5", 1, id="half a byte rounds up like Value"),
        pytest.param("memory", "1E", 10**18, id="an exa suffix is not an exponent"),
        pytest.param(GPU, "2", 2, id="an extended resource counts whole units"),
        pytest.param("pods", "110", 110, id="the pod count"),
    ],
)
def test_quantity(resource: str, text: str, expected: int) -> None:
    assert quantity(resource, text) == expected


@pytest.mark.parametrize("text", ["abc", "1Zi", "1ki", ""])
def test_a_malformed_quantity_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        quantity("memory", text)


@pytest.mark.parametrize(
    "the_pod, expected",
    [
        pytest.param(pod(), {"pods": 1}, id="a pod without requests takes only its pod slot"),
        pytest.param(
            pod(containers=[container("100m", "1Gi"), container("200m")]),
            {"cpu": 300, "memory": Gi, "pods": 1},
            id="regular containers add up",
        ),
        pytest.param(
            pod(containers=[container("100m")], init=[container("500m")]),
            {"cpu": 500, "pods": 1},
            id="an init container bigger than the containers sets the request",
        ),
        pytest.param(
            pod(containers=[container("1")], init=[container("500m")]),
            {"cpu": 1000, "pods": 1},
            id="an init container smaller than the containers does not add",
        ),
        pytest.param(
            pod(containers=[container("1", "1Gi")], init=[container("2")]),
            {"cpu": 2000, "memory": Gi, "pods": 1},
            id="each resource takes its own maximum",
        ),
        pytest.param(
            pod(containers=[container("1")], init=[sidecar("500m")]),
            {"cpu": 1500, "pods": 1},
            id="a sidecar runs beside the containers and adds to them",
        ),
        pytest.param(
            pod(containers=[container("1")], init=[sidecar("1"), container("2")]),
            {"cpu": 3000, "pods": 1},
            id="an init container after a sidecar runs beside it",
        ),
        pytest.param(
            pod(containers=[container("1")], init=[container("2"), sidecar("1")]),
            {"cpu": 2000, "pods": 1},
            id="an init container before a sidecar runs alone",
        ),
        pytest.param(
            pod(containers=[container("1")], init=[sidecar("1"), container("500m"), sidecar("2"), container("1")]),
            {"cpu": 4000, "pods": 1},
            id="sidecars accumulate and the regular containers join all of them",
        ),
        pytest.param(
            pod(containers=[container("1")], init=[container("2")], overhead={"cpu": "250m", "memory": "120Mi"}),
            {"cpu": 2250, "memory": 120 * Mi, "pods": 1},
            id="overhead is added after the init container maximum",
        ),
        pytest.param(
            pod(containers=[container(extended={GPU: "1"}), container(extended={GPU: "2"})]),
            {GPU: 3, "pods": 1},
            id="extended resources add up too",
        ),
        pytest.param(
            pod(containers=[container("0", "0")]),
            {"pods": 1},
            id="explicit zero requests take nothing",
        ),
        pytest.param(
            pod(cpu="1", memory="1Gi", extended={GPU: "1"}, resources={"cpu": "3"}, overhead={"cpu": "100m"}),
            {"cpu": 3100, "memory": 1024**3, GPU: 1, "pods": 1},
            id="pod-level requests replace the containers' sum for what they set, overhead on top",
        ),
    ],
)
def test_pod_requests_follow_aggregate_container_requests(the_pod: V1Pod, expected: dict[str, int]) -> None:
    assert pod_requests(the_pod) == Counter(expected)


@pytest.mark.parametrize(
    "the_pod, expected",
    [
        pytest.param(
            pod(), {"cpu": 100, "memory": 200 * Mi}, id="a container without requests counts as 100m and 200Mi"
        ),
        pytest.param(
            pod(containers=[container(), container()]),
            {"cpu": 200, "memory": 400 * Mi},
            id="each container without requests counts once",
        ),
        pytest.param(pod(cpu="1"), {"cpu": 1000, "memory": 200 * Mi}, id="only the missing resource gets the default"),
        pytest.param(
            pod(cpu="0", memory="0"),
            {},
            id="an explicit zero is kept, not replaced by the default",
        ),
        pytest.param(
            pod(containers=[container()], init=[container()]),
            {"cpu": 100, "memory": 200 * Mi},
            id="init containers without requests also count as the default",
        ),
        pytest.param(
            pod(containers=[container()], init=[sidecar()]),
            {"cpu": 200, "memory": 400 * Mi},
            id="a sidecar without requests adds the default",
        ),
        pytest.param(
            pod(overhead={"cpu": "50m"}), {"cpu": 150, "memory": 200 * Mi}, id="overhead is added to the defaults"
        ),
        pytest.param(
            pod(cpu="1", extended={GPU: "1"}), {"cpu": 1000, "memory": 200 * Mi}, id="only cpu and memory are scored"
        ),
    ],
)
def test_nonzero_requests_for_scoring(the_pod: V1Pod, expected: dict[str, int]) -> None:
    assert nonzero_requests(the_pod) == Counter(expected)


@pytest.mark.parametrize(
    "the_node, expected",
    [
        pytest.param(
            node(cpu="2", memory="1Gi", pods="10"), {"cpu": 2000, "memory": Gi, "pods": 10}, id="allocatable is read"
        ),
        pytest.param(
            node(cpu="2", memory=None, pods=None, capacity_only=True),
            {"cpu": 2000},
            id="without allocatable the capacity counts, as the API server defaults it",
        ),
        pytest.param(node(cpu=None, memory=None, pods=None), {}, id="a node without resources has nothing"),
    ],
)
def test_allocatable(the_node: V1Node, expected: dict[str, int]) -> None:
    assert allocatable(the_node) == Counter(expected)


def test_a_node_without_status_has_nothing_allocatable() -> None:
    bare = node()
    bare.status = None
    assert allocatable(bare) == Counter()


@pytest.mark.parametrize(
    "the_pod, expected",
    [
        pytest.param(pod(), set(), id="no ports"),
        pytest.param(pod(host_ports=[port(0)]), set(), id="a container port without a host port claims nothing"),
        pytest.param(pod(host_ports=[port(80)]), {("0.0.0.0", "TCP", 80)}, id="host IP and protocol default"),
        pytest.param(
            pod(host_ports=[port(53, protocol="UDP", ip="10.0.0.1")]),
            {("10.0.0.1", "UDP", 53)},
            id="explicit host IP and protocol",
        ),
        pytest.param(
            pod(containers=[container()], init=[sidecar(ports=[port(9000)])]),
            {("0.0.0.0", "TCP", 9000)},
            id="a sidecar holds its port for the pod's lifetime",
        ),
        pytest.param(
            pod(containers=[container()], init=[container(ports=[port(9000)])]),
            set(),
            id="a regular init container's port is released before the pod runs",
        ),
    ],
)
def test_host_ports(the_pod: V1Pod, expected: set[tuple[str, str, int]]) -> None:
    assert host_ports(the_pod) == expected
