"""The informer-fed cache and the scheduling queue, proven on the real control plane: cluster events move
unschedulable pods at once, a failed bind releases its assumed pod, watches survive an API server restart,
and after a burst of binds and deletions the cache equals a fresh LIST."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cache import ClusterCache
from cli import Config
from informer import Gone, Informer, list_cluster
from kubeapi import Api
from policies.config import default_profile
from policies.framework import NodeInfo
from scheduler import Scheduler
from tests.integration.conftest import Env, wait_for
from tests.integration.test_reliability import component, create_pods, free_port, private_env, sample

MODES = [pytest.param("poll", id="poll"), pytest.param("watch", id="watch")]


def unschedulable_attempts(port: int, env: Env) -> float:
    return sample(port, "scheduler_schedule_attempts_total", result="unschedulable", profile=env.scheduler_name)


@pytest.mark.parametrize("mode", MODES)
def test_a_node_added_while_a_pod_is_unschedulable_gets_it_bound_at_once(env: Env, mode: str) -> None:
    env.node("small", cpu="1")
    env.pod("big", cpu="2")
    port = free_port()
    with env.scheduler("--mode", mode, "--metrics-port", str(port)):
        wait_for(lambda: env.events("FailedScheduling"), timeout=30, what="FailedScheduling")
        time.sleep(4)  # a backoff-driven retry would have come after 1 s and 2 s
        assert unschedulable_attempts(port, env) == 1, "retried without any cluster change"
        added = time.monotonic()
        big = env.node("big", cpu="4")
        wait_for(lambda: env.node_of("big") == big, timeout=10, interval=0.05, what="binding after the node came")
        waited = time.monotonic() - added
    assert waited < 5, f"bound {waited:.1f} s after the node was added (the periodic flush is 5 min)"


@pytest.mark.parametrize("mode", MODES)
def test_deleting_a_pod_frees_room_for_a_waiting_pod_at_once(env: Env, mode: str) -> None:
    node = env.node("n", cpu="1")
    env.pod("first", cpu="800m")
    with env.scheduler("--mode", mode):
        wait_for(lambda: env.node_of("first") == node, what="first bound")
        env.pod("second", cpu="800m")
        wait_for(lambda: env.events("FailedScheduling"), what="second unschedulable")
        deleted = time.monotonic()
        env.core.delete_namespaced_pod("first", env.namespace, grace_period_seconds=0)
        wait_for(lambda: env.node_of("second") == node, timeout=10, interval=0.05, what="second bound")
        waited = time.monotonic() - deleted
    assert waited < 5, f"bound {waited:.1f} s after the deletion"


def in_process(env: Env, api: Api | None = None, **config: Any) -> Scheduler:
    api = api or Api(env.core.api_client, component=env.scheduler_name, instance="test")
    return Scheduler(
        api, Config(scheduler_name=env.scheduler_name, profiles=(default_profile(env.scheduler_name),), **config)
    )


def test_an_assumed_pod_whose_bind_fails_is_released(env: Env) -> None:
    """A real failure: the pod is deleted between the pending LIST and its bind, so the server answers 404."""
    node = env.node("n", cpu="1")
    env.pod("doomed", cpu="800m")

    class DeletingApi(Api):
        def pending_pods(self, names: Any) -> Iterator[list[dict[str, Any]]]:
            pods = [pod for page in super().pending_pods(names) for pod in page]
            for pod in pods:
                env.core.delete_namespaced_pod(pod["metadata"]["name"], env.namespace, grace_period_seconds=0)
            return iter([pods])

    scheduler = in_process(env, DeletingApi(env.core.api_client, component=env.scheduler_name, instance="test"))
    try:
        stats = scheduler.cycle()
        assert (stats.pending, stats.bound) == (1, 0)
        info = scheduler.cache.nodes[node]
        assert not info.pods and not info.requested.get("cpu"), "the failed bind still takes room"
        assert scheduler.cache.assumed() == 0 and len(scheduler.queue) == 0
    finally:
        scheduler.close()


def aggregates(info: NodeInfo) -> tuple[Any, ...]:
    return (
        info.facts,
        set(info.pods),
        +info.requested,
        +info.nonzero_requested,
        +info.used_ports,
        +info.workloads,
        set(info.anti_affinity_pods),
    )


def differences(cache: ClusterCache, fresh: ClusterCache) -> list[str]:
    mine = {n.name: aggregates(n) for n in cache.node_list()}
    theirs = {n.name: aggregates(n) for n in fresh.node_list()}
    return [name for name in mine.keys() | theirs.keys() if mine.get(name) != theirs.get(name)]


@pytest.mark.slow
def test_the_cache_equals_a_fresh_list_after_a_burst_of_1000_binds_and_deletions(env: Env) -> None:
    for i in range(20):
        env.node(f"n{i:02}", cpu="8", pods="110", labels={"topology.kubernetes.io/zone": f"z{i % 3}"})
    names = create_pods(env, 1000, labels={"app": "burst"})
    scheduler = in_process(env, mode="watch")
    try:
        bound = 0
        deadline = time.monotonic() + 240
        while bound < len(names) and time.monotonic() < deadline:
            bound += scheduler.cycle().bound
        assert bound == len(names)
        doomed = random.Random(7).sample(names, 400)
        threads = [threading.Thread(target=delete, args=(env, doomed[i::8])) for i in range(8)]
        for t in threads:
            t.start()
        create_pods(env, 200, prefix="q", labels={"app": "burst"})  # while deletions are under way
        for t in threads:
            t.join()
        bound = 0
        while bound < 200 and time.monotonic() < deadline:
            bound += scheduler.cycle().bound
        assert bound == 200

        def settled() -> bool:
            scheduler.cycle()  # applies what the watches handed over meanwhile
            # An assumed pod counts on its node as a confirmed one does: the cache can equal a LIST before the
            # watch's confirmations of the last binds are applied, so wait for those too.
            confirmed = scheduler.cache.assumed() == 0
            return confirmed and not differences(scheduler.cache, list_cluster(scheduler.api, time.monotonic))

        wait_for(settled, timeout=30, interval=0.5, what="every bind confirmed and the cache equal to a fresh LIST")
        assert scheduler.cache.assumed() == 0, "every bind was confirmed by the watch"
    finally:
        scheduler.close()


def delete(env: Env, names: list[str]) -> None:
    for name in names:
        env.core.delete_namespaced_pod(name, env.namespace, grace_period_seconds=0)


# --- watches across an API server restart (a private control plane) --------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_watch_broken_by_an_api_server_restart_resumes_and_loses_nothing(tmp_path: Path) -> None:
    with private_env(tmp_path / "cluster") as env:
        node = env.node("n", cpu="1")
        env.pod("before", cpu="800m")
        with env.scheduler("--mode", "watch", "--interval", "30", log=tmp_path / "scheduler.log") as scheduler:
            wait_for(lambda: env.node_of("before") == node, what="a pod bound before the restart")
            component(env, "stop", "kube-apiserver")
            time.sleep(2)
            component(env, "start", "kube-apiserver")
            # The cache must see changes made after the restart: a deletion that frees room, a new node.
            env.core.delete_namespaced_pod("before", env.namespace, grace_period_seconds=0)
            env.pod("after", cpu="800m")
            other = env.node("other", cpu="1", labels={"after-restart": "yes"})
            env.pod("pinned", cpu="100m", nodeSelector={"after-restart": "yes"})
            wait_for(lambda: env.node_of("after") == node, timeout=60, what="the freed room used")
            wait_for(lambda: env.node_of("pinned") == other, timeout=60, what="the new node used")
            assert scheduler.process.poll() is None
        assert "watch Pod failed" in scheduler.output() or "watch Node failed" in scheduler.output()


@pytest.mark.slow
def test_after_a_restart_an_old_version_is_gone_and_a_relist_hands_over_only_the_difference(tmp_path: Path) -> None:
    """A restarted API server's watch cache starts at the current revision: a watch from before it gets 410 Gone
    (so the informer LISTs again), and the re-LIST reports exactly what changed: new, changed and deleted
    objects, nothing else."""
    with private_env(tmp_path / "cluster") as env:
        stop = threading.Event()
        seen: list[tuple[str, str]] = []
        api = Api(env.core.api_client, component=env.scheduler_name, instance="test")
        selector = f"metadata.namespace={env.namespace}"
        informer = Informer(api, "Pod", selector, lambda kind, obj: seen.append((kind, obj["metadata"]["name"])), stop)
        for name in ("kept", "changed", "gone"):
            env.pod(name, scheduler="nobody")
        version = informer.list()
        assert sorted(seen) == [("ADDED", "changed"), ("ADDED", "gone"), ("ADDED", "kept")]
        seen.clear()
        env.core.patch_namespaced_pod("changed", env.namespace, {"metadata": {"labels": {"x": "y"}}})
        env.core.delete_namespaced_pod("gone", env.namespace, grace_period_seconds=0)
        env.pod("new", scheduler="nobody")
        component(env, "stop", "kube-apiserver")
        component(env, "start", "kube-apiserver")
        with pytest.raises(Gone):
            informer._watch(version)
        informer.list()
        assert sorted(seen) == [("ADDED", "new"), ("DELETED", "gone"), ("MODIFIED", "changed")]
