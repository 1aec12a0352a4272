"""The scheduler against the real control plane: what it binds, what it refuses, and what it reports."""

from __future__ import annotations

import collections
import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from cli import Config
from kubeapi import Api
from scheduler import Scheduler
from tests.integration.conftest import Env, body, conditions, wait_for
from tests.integration.test_reliability import free_port, get

pytestmark = pytest.mark.timeout(180)


def test_the_demo_pod_goes_to_the_only_plain_node(env: Env) -> None:
    env.node("tainted", taints=[{"key": "gpu", "value": "true", "effect": "NoSchedule"}])
    env.node("cordoned", cordoned=True)
    plain = env.node("plain")
    env.pod("test-pod", memory="64Mi")
    result = env.run_once()
    assert result.returncode == 0, result.stderr
    assert f"Bound {env.namespace}/test-pod -> {plain}" in result.stderr
    assert env.node_of("test-pod") == plain
    [event] = env.events("Scheduled")
    assert (event.type, event.message) == ("Normal", f"Successfully assigned {env.namespace}/test-pod to {plain}")
    # events.k8s.io/v1, as kube-scheduler posts it: reportingController/Instance, seen here in the core/v1 view.
    assert event.reporting_component == env.scheduler_name
    assert event.reporting_instance == f"{env.scheduler_name}-{socket.gethostname()}"
    assert event.action == "Binding" and event.event_time is not None


def test_an_unplaceable_pod_gets_kube_schedulers_message_event_and_condition(env: Env) -> None:
    env.node("tainted", taints=[{"key": "gpu", "value": "true", "effect": "NoSchedule"}])
    env.node("small-1", cpu="1")
    env.node("small-2", cpu="1")
    env.pod("big", cpu="2")
    assert env.run_once().returncode == 0
    # kube's text: the filters' reasons, then the preemption's (PostFilter) verdict: a request beyond every
    # node's allocatable, and a taint, are nothing eviction could fix.
    message = (
        "0/3 nodes are available: 1 node(s) had untolerated taint {gpu: true}, 2 Insufficient cpu. "
        "preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling."
    )
    [event] = env.events("FailedScheduling")
    assert (event.type, event.message) == ("Warning", message)
    [condition] = conditions(env.read("big"))
    assert (condition.type, condition.status, condition.reason, condition.message) == (
        "PodScheduled",
        "False",
        "Unschedulable",
        message,
    )


def test_a_pending_pod_is_bound_once_a_fitting_node_appears_and_reported_only_once(env: Env) -> None:
    env.node("small", cpu="1")
    env.pod("waiting", cpu="2")
    with env.scheduler("--interval", "0.2") as scheduler:
        wait_for(lambda: env.events("FailedScheduling"), what="FailedScheduling event")
        big = env.node("big", cpu="4")
        wait_for(lambda: env.node_of("waiting") == big, timeout=30, what="binding to the new node")
    assert len(env.events("FailedScheduling")) == 1, "the same message must not be re-posted every cycle"
    assert scheduler.exit_code == 0
    assert scheduler.output().count(f"Bound {env.namespace}/waiting -> {big}") == 1


@pytest.mark.parametrize(
    "node_kwargs, pod_spec, fits",
    [
        pytest.param(
            {"taints": [{"key": "gpu", "value": "true", "effect": "NoSchedule"}]},
            {"tolerations": [{"key": "gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}]},
            True,
            id="a pod tolerating the taint lands on the tainted node",
        ),
        pytest.param(
            {"taints": [{"key": "gpu", "value": "true", "effect": "NoExecute"}]},
            {},
            False,
            id="a NoExecute taint keeps an intolerant pod off",
        ),
        pytest.param(
            {"taints": [{"key": "gpu", "value": "true", "effect": "PreferNoSchedule"}]},
            {},
            True,
            id="a PreferNoSchedule taint does not filter",
        ),
        pytest.param({"labels": {"disk": "ssd"}}, {"nodeSelector": {"disk": "ssd"}}, True, id="nodeSelector matches"),
        pytest.param({"labels": {"disk": "hdd"}}, {"nodeSelector": {"disk": "ssd"}}, False, id="nodeSelector misses"),
        pytest.param(
            {"labels": {"zone": "a"}},
            {
                "affinity": {
                    "nodeAffinity": {
                        "requiredDuringSchedulingIgnoredDuringExecution": {
                            "nodeSelectorTerms": [
                                {"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]}
                            ]
                        }
                    }
                }
            },
            False,
            id="required node affinity NotIn excludes the node",
        ),
        pytest.param(
            {"cpu": "1"},
            {"initContainers": [{"name": "init", "image": "pause", "resources": {"requests": {"cpu": "1500m"}}}]},
            False,
            id="an init container bigger than the node does not fit",
        ),
        pytest.param(
            {"extended": {"nvidia.com/gpu": "1"}},
            {"container": {"resources": {"requests": {"nvidia.com/gpu": "1"}, "limits": {"nvidia.com/gpu": "1"}}}},
            True,
            id="an extended resource the node has fits",
        ),
        pytest.param({"ready": False}, {}, False, id="a NotReady node takes no pods"),
    ],
)
def test_filters_on_the_real_server(
    env: Env, node_kwargs: dict[str, Any], pod_spec: dict[str, Any], fits: bool
) -> None:
    node = env.node("n", **node_kwargs)
    env.pod("p", **pod_spec)
    assert env.run_once().returncode == 0
    assert env.node_of("p") == (node if fits else None)
    assert bool(env.events("FailedScheduling")) is not fits


def test_pod_overhead_counts_towards_the_requests(env: Env) -> None:
    """Overhead comes from a RuntimeClass (admission copies it into the pod), not from the pod's author."""
    node_api = client.NodeV1Api(env.core.api_client)
    runtime_class = f"{env.namespace}-rc"
    node_api.create_runtime_class(
        body({"metadata": {"name": runtime_class}, "handler": "runc", "overhead": {"podFixed": {"cpu": "950m"}}})
    )
    try:
        env.node("n", cpu="1")
        env.pod("p", runtimeClassName=runtime_class)
        spec = env.read("p").spec
        assert spec is not None and spec.overhead == {"cpu": "950m"}
        assert env.run_once().returncode == 0
        assert env.node_of("p") is None
        [event] = env.events("FailedScheduling")
        # 100m + 950m asks for more than the node has at all: nothing eviction could fix.
        assert event.message == (
            "0/1 nodes are available: 1 Insufficient cpu. "
            "preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
        )
    finally:
        node_api.delete_runtime_class(runtime_class)


def test_a_burst_of_100_identical_pods_spreads_evenly(env: Env) -> None:
    nodes = [env.node(f"n{i}", cpu="8") for i in range(4)]
    for i in range(100):
        env.pod(f"p{i}", cpu="10m")
    assert env.run_once().returncode == 0
    per_node = collections.Counter(env.placements().values())
    assert set(per_node) == set(nodes)
    # kube's integer scores stay level for about two such pods, and ties go to the lowest node name (kube's go to
    # a random one): 26/26/24/24 here.
    assert max(per_node.values()) - min(per_node.values()) <= 2, per_node


def test_pods_of_other_schedulers_and_bound_pods_are_left_alone(env: Env) -> None:
    env.node("free")  # room for both, were they ours
    taken = env.node("taken")
    env.pod("theirs", scheduler="default-scheduler")
    env.pod("bound", nodeName=taken)
    result = env.run_once()
    assert result.returncode == 0
    assert env.placements() == {"theirs": None, "bound": taken}
    assert "Bound" not in result.stderr
    assert env.events() == [], "nothing reported about pods that are not ours to schedule"


def test_dry_run_binds_nothing_and_writes_nothing(env: Env) -> None:
    env.node("n")
    env.pod("p")
    env.pod("too-big", cpu="64")
    result = env.run_once("--dry-run")
    assert result.returncode == 0
    assert f"Would bind {env.namespace}/p" in result.stderr
    assert env.placements() == {"p": None, "too-big": None}
    assert env.events() == []


def test_a_pod_bound_by_someone_else_between_list_and_bind_is_not_retried(
    env: Env, caplog: pytest.LogCaptureFixture
) -> None:
    """A real race: another client binds every pod right after our list. The server answers 409."""
    node = env.node("n")
    env.pod("p")

    class RacingApi(Api):
        def pending_pods(self, names: Any) -> Iterator[list[dict[str, Any]]]:
            pods = [pod for page in super().pending_pods(names) for pod in page]
            for pod in pods:
                name = pod["metadata"]["name"]
                binding = client.V1Binding(
                    metadata=client.V1ObjectMeta(name=name),
                    target=client.V1ObjectReference(kind="Node", name=node),
                )
                env.core.create_namespaced_pod_binding(name, env.namespace, binding, _preload_content=False)
            return iter([pods])

    from policies.config import default_profile

    api = RacingApi(env.core.api_client, component=env.scheduler_name, instance="test")
    scheduler = Scheduler(
        api, Config(scheduler_name=env.scheduler_name, profiles=(default_profile(env.scheduler_name),))
    )
    with caplog.at_level(logging.INFO, logger="my-scheduler"):
        stats = scheduler.cycle()
    scheduler.close()
    assert (stats.bound, stats.errors) == (0, 0)
    assert "not bound (already bound)" in caplog.text
    assert "Bound" not in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert env.events("Scheduled") == []


def test_once_exits_after_one_pass_and_sigterm_stops_the_daemon_promptly(env: Env) -> None:
    env.node("n")
    result = env.run_once(timeout=30)
    assert result.returncode == 0
    port = free_port()
    with env.scheduler("--interval", "30", "--metrics-port", str(port)) as scheduler:
        # Ready once its first cycle is over: the loop then sleeps out a 30 s interval, which SIGTERM must cut.
        wait_for(lambda: _ready(port), what="the first cycle")
    assert scheduler.exit_code == 0
    assert scheduler.stop_seconds is not None and scheduler.stop_seconds < 3, f"{scheduler.stop_seconds:.1f} s"


def _ready(port: int) -> bool:
    try:
        return get(port, "/readyz")[0] == 200
    except OSError:  # not serving yet
        return False


def test_watch_mode_binds_a_new_pod_without_waiting_for_a_poll(env: Env) -> None:
    """With --mode watch the loop sleeps until a watch event: a 30 s interval must not delay the binding."""
    node = env.node("n")
    with env.scheduler("--mode", "watch", "--interval", "30", "--log-level", "DEBUG") as scheduler:
        # Its pending pods' first LIST is done, so a pod created now can only arrive by the watch.
        listed = f"spec.schedulerName={env.scheduler_name}); watching"
        wait_for(lambda: listed in scheduler.output(), what="the pending pods' LIST")
        created = time.monotonic()
        env.pod("p")
        wait_for(lambda: env.node_of("p") == node, timeout=10, interval=0.05, what="binding")
        assert time.monotonic() - created < 5
    assert scheduler.exit_code == 0


def test_a_gated_pod_keeps_the_api_servers_schedulinggated_condition_until_its_gates_go(env: Env) -> None:
    """The API server itself sets PodScheduled=False/SchedulingGated on a pod created with scheduling gates
    (pkg/registry/core/pod/strategy.go, applySchedulingGatedCondition; gates can only be removed later), as
    kube-scheduler relies on: the scheduler leaves the pod and its condition alone, and binds it once the last
    gate is removed."""
    node = env.node("plain")
    env.pod("gated", schedulingGates=[{"name": "example.com/wait"}])
    [condition] = conditions(env.read("gated"))
    assert (condition.type, condition.status, condition.reason, condition.message) == (
        "PodScheduled",
        "False",
        "SchedulingGated",
        "Scheduling is blocked due to non-empty scheduling gates",
    )
    assert env.run_once().returncode == 0
    assert env.node_of("gated") is None
    assert [(c.reason, c.message) for c in conditions(env.read("gated"))] == [
        ("SchedulingGated", "Scheduling is blocked due to non-empty scheduling gates")
    ]
    assert env.events() == []
    env.core.patch_namespaced_pod("gated", env.namespace, {"spec": {"schedulingGates": None}})
    assert env.run_once().returncode == 0
    assert env.node_of("gated") == node
