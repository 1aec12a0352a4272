"""Priority and preemption against the real API server: kube-scheduler's DefaultPreemption as users see it.

Victims are pods created already bound (`nodeName`) with `terminationGracePeriodSeconds: 0`: no kubelet runs
here to confirm a graceful termination, so a deleted victim would otherwise stay (terminating) for good. Where a
test must see a victim before it goes, a finalizer of the test's own holds it. PodDisruptionBudgets are real
objects; without the disruption controller their status says 0 disruptions allowed, which is also what the
controller computes for the budgets used here (minAvailable = the pods they select).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client

from kubeapi import PodRef
from tests.integration.conftest import Cluster, Env, body, node_name, unique, wait_for

INTERVAL = ("--interval", "0.2")
KEEP = "my-scheduler.test/keep"  # the test's own finalizer: a victim stays, terminating, until it is removed


@dataclass(frozen=True)
class Priorities:
    low: str  # PriorityClass names: value 10
    middle: str  # 20
    high: str  # 1000
    high_never: str  # 1000, preemptionPolicy: Never


@pytest.fixture(scope="module")
def priorities(cluster: Cluster) -> Iterator[Priorities]:
    scheduling = client.SchedulingV1Api(cluster.core.api_client)
    classes = {
        "low": (10, "PreemptLowerPriority"),
        "middle": (20, "PreemptLowerPriority"),
        "high": (1000, "PreemptLowerPriority"),
        "high_never": (1000, "Never"),
    }
    names = {key: unique(f"prio-{key.replace('_', '-')}") for key in classes}
    for key, (value, policy) in classes.items():
        scheduling.create_priority_class(
            body({"metadata": {"name": names[key]}, "value": value, "preemptionPolicy": policy})
        )
    try:
        yield Priorities(**names)
    finally:
        for name in names.values():
            scheduling.delete_priority_class(name)


def victim(env: Env, name: str, node: str, cpu: str, priority: str, **metadata: Any) -> client.V1Pod:
    """A running pod of `priority` already on `node`."""
    return env.core.create_namespaced_pod(
        env.namespace,
        body(
            {
                "metadata": {"name": name, **metadata},
                "spec": {
                    "nodeName": node,
                    "priorityClassName": priority,
                    "terminationGracePeriodSeconds": 0,
                    "containers": [
                        {"name": "c", "image": "registry.k8s.io/pause:3.10", "resources": {"requests": {"cpu": cpu}}}
                    ],
                },
            }
        ),
    )


def gone(env: Env, name: str) -> bool:
    try:
        env.read(name)
    except client.ApiException as e:
        if e.status == 404:
            return True
        raise
    return False


def nominated(env: Env, name: str) -> str | None:
    status = env.read(name).status
    return status.nominated_node_name if status else None


def test_a_high_priority_pod_evicts_the_victims_kube_would_pick_and_takes_their_node(
    env: Env, priorities: Priorities
) -> None:
    a, b = env.node("a", cpu="1"), env.node("b", cpu="1")
    victim(env, "a1", a, "800m", priorities.low, finalizers=[KEEP])
    # b's pods are of a higher (though still lower than the preemptor's) priority: kube prefers a, whose
    # highest victim has the lowest priority. On b only b1 would have to go (b2 is reprieved).
    victim(env, "b1", b, "500m", priorities.middle)
    victim(env, "b2", b, "400m", priorities.middle)
    with env.scheduler(*INTERVAL) as scheduler:
        env.pod("urgent", cpu="600m", priorityClassName=priorities.high)
        wait_for(lambda: nominated(env, "urgent") == a, what="urgent nominated to a")
        # The victim, held by the finalizer: kube's DisruptionTarget condition, then the deletion.
        held = wait_for(
            lambda: (p := env.read("a1")).metadata and p.metadata.deletion_timestamp and p, what="a1 deleted"
        )
        target = next(c for c in held.status.conditions if c.type == "DisruptionTarget")
        assert (target.status, target.reason) == ("True", "PreemptionByScheduler")
        assert target.message == f"{env.scheduler_name}: preempting to accommodate a higher priority pod"
        assert env.node_of("urgent") is None, "bound while the victim still holds the room"
        env.core.patch_namespaced_pod("a1", env.namespace, {"metadata": {"finalizers": None}})
        wait_for(lambda: env.node_of("urgent"), what="urgent bound")
    assert env.node_of("urgent") == a
    assert gone(env, "a1")
    assert {env.node_of("b1"), env.node_of("b2")} == {b}, "a pod that did not need to go went"
    uid = PodRef.of(env.read("urgent")).uid
    [preempted] = env.events("Preempted")
    assert (preempted.involved_object.name, preempted.type) == ("a1", "Normal")
    assert preempted.message == f"Preempted by pod {uid} on node {a}"
    assert preempted.related is not None and preempted.related.name == "urgent"
    [failed] = [e for e in env.events("FailedScheduling") if e.involved_object.name == "urgent"]
    assert str(failed.message).startswith("0/2 nodes are available: 2 Insufficient cpu. preemption:"), failed.message
    assert "Preempted a1" not in scheduler.output()  # the log names the victims as ns/name
    assert f"preempting {env.namespace}/a1 on {a}" in scheduler.output()


def test_preemption_policy_never_evicts_nothing(env: Env, priorities: Priorities) -> None:
    a = env.node("a", cpu="1")
    victim(env, "a1", a, "800m", priorities.low)
    with env.scheduler(*INTERVAL):
        env.pod("polite", cpu="600m", priorityClassName=priorities.high_never)
        event = wait_for(lambda: env.events("FailedScheduling"), what="FailedScheduling")[0]
    assert event.message == (
        "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to preemptionPolicy=Never."
    )
    assert env.node_of("a1") == a
    assert nominated(env, "polite") is None


def test_a_pod_disruption_budget_sends_the_preemptor_to_the_other_node(env: Env, priorities: Priorities) -> None:
    a, b = env.node("a", cpu="1"), env.node("b", cpu="1")
    # a's victim has the lower priority (kube's preferred node otherwise), but a budget protects it.
    victim(env, "a1", a, "800m", priorities.low, labels={"app": "guarded"})
    victim(env, "b1", b, "800m", priorities.middle)
    policy = client.PolicyV1Api(env.core.api_client)
    policy.create_namespaced_pod_disruption_budget(
        env.namespace,
        body(
            {
                "metadata": {"name": "guard"},
                "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "guarded"}}},
            }
        ),
    )
    with env.scheduler(*INTERVAL):
        env.pod("urgent", cpu="600m", priorityClassName=priorities.high)
        wait_for(lambda: env.node_of("urgent"), what="urgent bound")
    assert env.node_of("urgent") == b
    assert gone(env, "b1")
    assert env.node_of("a1") == a


def test_a_lower_priority_pod_does_not_take_the_room_made_for_a_nominated_one(env: Env, priorities: Priorities) -> None:
    a = env.node("a", cpu="1")
    victim(env, "a1", a, "800m", priorities.low)
    with env.scheduler(*INTERVAL) as scheduler:
        env.pod("urgent", cpu="600m", priorityClassName=priorities.high)
        wait_for(lambda: nominated(env, "urgent") == a, what="urgent nominated to a")
        # urgent now waits out its backoff while a1's room is free: a pod of lower priority created meanwhile
        # is tried first, and must leave the room to the nominated pod.
        env.pod("latecomer", cpu="500m", priorityClassName=priorities.low)
        wait_for(lambda: env.node_of("urgent"), what="urgent bound")
        wait_for(lambda: env.events("FailedScheduling") and "latecomer" in scheduler.output(), what="latecomer tried")
    assert env.node_of("urgent") == a
    assert env.node_of("latecomer") is None


def test_explain_tells_which_victims_preemption_would_pick(env: Env, priorities: Priorities) -> None:
    a = env.node("a", cpu="1")
    victim(env, "a1", a, "800m", priorities.low)
    env.pod("urgent", cpu="600m", priorityClassName=priorities.high, scheduler=unique("nobody"))
    result = subprocess.run(
        env.scheduler_args("explain", f"{env.namespace}/urgent"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"=> preemption would evict {env.namespace}/a1 on {a}, and nominate that node" in result.stdout
    assert env.node_of("a1") == a, "explain deleted something"


def test_a_profile_with_preemption_off_evicts_nothing(env: Env, priorities: Priorities, tmp_path: Any) -> None:
    a = env.node("a", cpu="1")
    victim(env, "a1", a, "800m", priorities.low)
    config = tmp_path / "policy.yaml"
    config.write_text(f"schedulerName: {env.scheduler_name}\npreemption: false\n")
    with env.scheduler(*INTERVAL, "--config", str(config)):
        env.pod("urgent", cpu="600m", priorityClassName=priorities.high)
        event = wait_for(lambda: env.events("FailedScheduling"), what="FailedScheduling")[0]
    assert event.message == "0/1 nodes are available: 1 Insufficient cpu."
    assert env.node_of("a1") == a
    assert node_name(env.read("urgent")) is None
