"""The cluster cache: incremental aggregates, assume / confirm / forget / expire, pods of unknown nodes,
and the JSON → record conversions it is fed with."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from kubernetes.client import ApiClient, V1LabelSelector

from cache import (
    ASSUMED_TTL_SECONDS,
    ClusterCache,
    budget,
    namespace_labels,
    node_facts,
    pending_pod,
    pod_info,
    storage_key,
    storage_record,
    workload_selector,
)
from policies.algorithm import schedule
from policies.config import default_profile
from policies.framework import NodeFacts, NodeInfo, PodInfo
from policies.volume_binding import PodVolumes
from tests.builders import Clock, node, pod, port


def on(name: str, node_name: str, **kwargs: Any) -> PodInfo:
    return PodInfo.of(pod(name, **kwargs), node_name)


def uid(name: str) -> str:
    return f"uid-default-{name}"  # as tests.builders.pod names them


def facts(name: str, **kwargs: Any) -> NodeFacts:
    return NodeFacts.of(node(name, **kwargs))


def as_json(model: Any) -> dict[str, Any]:
    """As the API server sends it."""
    out: dict[str, Any] = ApiClient().sanitize_for_serialization(model)
    return out


@pytest.fixture
def clock() -> Clock:
    return Clock(0.0)


@pytest.fixture
def cache(clock: Clock) -> ClusterCache:
    c = ClusterCache(clock)
    c.set_node(facts("a"))
    c.set_node(facts("b"))
    return c


def fresh(cache: ClusterCache, pods: list[PodInfo]) -> dict[str, NodeInfo]:
    """The same cluster built in one go: what incremental updates must agree with."""
    infos = {n.name: NodeInfo(n.facts) for n in cache.node_list()}
    for p in pods:
        infos[p.node_name].add_pod(p)
    return infos


def aggregates(info: NodeInfo) -> tuple[Any, ...]:
    return (
        set(info.pods),
        info.requested,
        info.nonzero_requested,
        info.used_ports,
        info.workloads,
        set(info.anti_affinity_pods),
    )


def test_adds_and_removes_keep_every_aggregate_equal_to_a_fresh_build(cache: ClusterCache) -> None:
    pods = [
        on("web-1", "a", cpu="500m", memory="1Gi", owner="rs", host_ports=[port(8080)]),
        on("web-2", "a", cpu="250m", owner="rs"),
        on("db", "b", cpu="1", memory="2Gi"),
    ]
    for p in pods:
        cache.add_pod(p)
    assert cache.remove_pod(uid("web-1"))
    assert not cache.remove_pod(uid("web-1"))
    want = fresh(cache, pods[1:])
    for info in cache.node_list():
        assert aggregates(info) == aggregates(want[info.name])
    assert cache.nodes["a"].workloads == Counter({"owner/rs": 1})
    assert not cache.nodes["a"].used_ports


def test_an_assumed_pod_counts_at_once_and_is_confirmed_by_the_watch(cache: ClusterCache) -> None:
    p = on("p", "a", cpu="1")
    cache.assume(p)
    assert cache.nodes["a"].requested["cpu"] == 1000 and cache.assumed() == 1
    assert cache.add_pod(p) == "confirmed"
    assert cache.assumed() == 0 and cache.nodes["a"].requested["cpu"] == 1000


def test_a_failed_bind_forgets_the_assumed_pod(cache: ClusterCache) -> None:
    cache.assume(on("p", "a", cpu="1"))
    cache.forget(uid("p"))
    assert not cache.has_pod(uid("p")) and cache.nodes["a"].requested["cpu"] == 0


def test_forget_leaves_a_confirmed_pod_alone(cache: ClusterCache) -> None:
    p = on("p", "a", cpu="1")
    cache.assume(p)
    cache.add_pod(p)
    cache.forget(uid("p"))
    assert cache.has_pod(uid("p"))


def test_a_bound_pod_the_watch_never_confirms_expires(cache: ClusterCache, clock: Clock) -> None:
    cache.assume(on("p", "a", cpu="1"))
    clock.now += 10 * ASSUMED_TTL_SECONDS
    cache.expire()
    assert cache.has_pod(uid("p")), "a bind still in flight never expires"
    cache.finish_binding(uid("p"))
    clock.now += ASSUMED_TTL_SECONDS - 1
    cache.expire()
    assert cache.has_pod(uid("p"))
    clock.now += 1
    cache.expire()
    assert not cache.has_pod(uid("p")) and cache.nodes["a"].requested["cpu"] == 0


def test_an_assumed_pod_seen_on_another_node_moves_there(cache: ClusterCache) -> None:
    """Someone else bound it first (our bind then fails with 409)."""
    cache.assume(on("p", "a", cpu="1"))
    assert cache.add_pod(on("p", "b", cpu="1")) == "changed"
    assert cache.nodes["a"].requested["cpu"] == 0 and cache.nodes["b"].requested["cpu"] == 1000
    cache.forget(uid("p"))  # the 409 arrives after the watch: the pod stays where the watch saw it
    assert cache.nodes["b"].requested["cpu"] == 1000


def test_pods_of_an_unknown_node_wait_and_join_it(cache: ClusterCache) -> None:
    cache.add_pod(on("p", "c", cpu="1"))
    assert "c" not in cache.nodes and cache.has_pod(uid("p"))
    cache.set_node(facts("c"))
    assert cache.nodes["c"].requested["cpu"] == 1000
    cache.remove_node("c")
    assert [n.name for n in cache.node_list()] == ["a", "b"]
    assert cache.remove_pod(uid("p"))


def test_a_heartbeat_changes_nothing_a_new_taint_does(cache: ClusterCache) -> None:
    assert not cache.set_node(facts("a"))
    assert cache.set_node(facts("a", unschedulable=True))
    assert cache.nodes["a"].unschedulable


def test_node_only_verdicts_are_kept_until_a_node_comes_goes_or_changes(cache: ClusterCache) -> None:
    profile = default_profile("my-scheduler")

    def feasible() -> set[str]:
        nodes = cache.node_list()
        decision = schedule(profile, pod("p"), nodes, find=len(nodes), start=0, cache=cache.filter_cache())
        return set(decision.totals)

    kept = cache.filter_cache()
    assert feasible() == {"a", "b"}
    cache.set_node(facts("a"))  # a heartbeat
    cache.add_pod(on("q", "a"))
    assert cache.filter_cache() is kept
    cache.set_node(facts("a", unschedulable=True))
    assert feasible() == {"b"}
    cache.set_node(facts("c"))
    assert feasible() == {"b", "c"}
    cache.remove_node("b")
    assert feasible() == {"c"}
    assert cache.filter_cache() is not kept


def test_json_conversions_keep_what_the_policies_read() -> None:
    obj = as_json(pod("p", cpu="100m", memory="1Gi", labels={"app": "web"}))
    obj["metadata"].update(uid="u1", managedFields=[{"manager": "kubectl"}], creationTimestamp="2026-11-26T07:00:00Z")
    obj["spec"]["nodeName"] = "a"
    info = pod_info(obj)
    assert (info.uid, info.node_name, dict(info.labels), info.requests["cpu"]) == ("u1", "a", {"app": "web"}, 100)
    queued = pending_pod(obj)
    assert (queued.uid, queued.key, queued.created) == ("u1", "default/p", "2026-11-26T07:00:00Z")
    assert b"managedFields" not in queued.manifest
    status_only = {**obj, "status": {"conditions": [{"type": "PodScheduled", "status": "False"}]}}
    assert pending_pod(status_only).spec_digest == queued.spec_digest
    relabelled = {**obj, "metadata": {**obj["metadata"], "labels": {"app": "db"}}}
    assert pending_pod(relabelled).spec_digest != queued.spec_digest
    assert node_facts(as_json(node("n", cpu="2"))).allocatable["cpu"] == 2000


def test_our_bind_seen_by_the_watch_is_confirmed_without_reading_the_pod_again(cache: ClusterCache) -> None:
    cache.assume(on("p", "a", cpu="1", labels={"app": "web"}))
    assert (pod := cache.assumed_pod(uid("p"))) is not None and pod.node_name == "a"
    assert not cache.confirm(uid("p"), "b", {"app": "web"}), "seen on another node: not ours to confirm"
    assert cache.confirm(uid("p"), "a", {"app": "web"})
    assert cache.assumed_pod(uid("p")) is None and cache.nodes["a"].requested["cpu"] == 1000
    assert not cache.confirm(uid("p"), "a", {"app": "web"}), "a second event for it is read as any other"


def test_a_pod_labelled_at_binding_is_confirmed_with_its_new_labels(cache: ClusterCache) -> None:
    """The API server copies the node's topology labels onto the pod at binding: the record must get them."""
    cache.assume(on("p", "a", owner="rs", labels={"app": "web"}))
    labels = {"app": "web", "topology.kubernetes.io/zone": "z1"}
    assert cache.confirm(uid("p"), "a", labels)
    assert cache.assumed_pod(uid("p")) is None
    assert cache.nodes["a"].pods[uid("p")].labels == labels
    assert cache.nodes["a"].workloads == Counter({"owner/rs": 1}), "counted once, not twice"


def test_nominated_pods_are_kept_by_node_until_unnominated(cache: ClusterCache) -> None:
    assert cache.nominated() == {}
    cache.nominate(on("p", "a"))
    cache.nominate(on("q", "a"))
    cache.nominate(on("r", "b"))
    assert {node: sorted(p.name for p in pods) for node, pods in cache.nominated().items()} == {
        "a": ["p", "q"],
        "b": ["r"],
    }
    assert cache.nomination(uid("p")) == "a"
    cache.nominate(on("p", "b"))  # nominated elsewhere: moves
    cache.unnominate(uid("q"))
    cache.retain_nominations({uid("p")})  # r is no longer pending
    assert {node: [p.name for p in pods] for node, pods in cache.nominated().items()} == {"b": ["p"]}
    assert cache.nomination(uid("q")) is None
    assert not cache.has_pod(uid("p")), "a nominated pod is not on its node"


def test_a_pod_disruption_budget_is_read_from_its_json() -> None:
    obj = {
        "metadata": {"name": "guard", "namespace": "ns", "uid": "u1"},
        "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "db"}}},
        "status": {"disruptionsAllowed": 2, "disruptedPods": {"db-0": "2026-11-26T10:00:00Z"}},
    }
    read = budget(obj)
    assert (read.namespace, read.name, read.disruptions_allowed, read.disrupted_pods) == (
        "ns",
        "guard",
        2,
        frozenset({"db-0"}),
    )
    assert read.selector is not None and read.selector.match_labels == {"app": "db"}
    assert budget({"metadata": {"name": "new", "namespace": "ns"}}).disruptions_allowed == 0, "no status yet"


def test_namespaces_and_selectors_follow_their_informers(cache: ClusterCache) -> None:
    cache.set_namespace(*namespace_labels({"metadata": {"name": "prod", "labels": {"team": "a"}}}))
    assert cache.namespaces == {"prod": {"team": "a"}}
    cache.set_namespace("prod", None)
    assert cache.namespaces == {}
    service = {"metadata": {"namespace": "prod", "name": "web"}, "spec": {"selector": {"app": "web"}}}
    headless = {"metadata": {"namespace": "prod", "name": "ext"}, "spec": {"type": "ExternalName"}}
    replica_set = {"metadata": {"namespace": "prod", "name": "rs"}, "spec": {"selector": {"matchLabels": {"a": "b"}}}}
    cache.set_selector(*workload_selector("Service", service))
    cache.set_selector(*workload_selector("Service", headless))
    cache.set_selector(*workload_selector("ReplicaSet", replica_set))
    assert cache.selectors.services == {"prod": {"web": {"app": "web"}}}
    assert cache.selectors.controllers == {("ReplicaSet", "prod", "rs"): V1LabelSelector(match_labels={"a": "b"})}
    cache.set_selector(("Service", "prod", "web"), None)
    cache.set_selector(("ReplicaSet", "prod", "rs"), None)
    assert cache.selectors.services == {"prod": {}}
    assert cache.selectors.controllers == {}


def test_node_images_are_facts() -> None:
    facts = node_facts(node("n", images={"app:v1": 5}).to_dict())
    assert facts.images == {"app:v1": 5}


def test_image_counts_follow_the_nodes(cache: ClusterCache) -> None:
    cache.set_node(node_facts(node("a", images={"app:v1": 5, "db:v1": 7}).to_dict()))
    cache.set_node(node_facts(node("b", images={"app:v1": 5}).to_dict()))
    assert cache.objects().image_nodes == {"app:v1": 2, "db:v1": 1}
    cache.set_node(node_facts(node("a", images={"app:v1": 5}).to_dict()))
    assert cache.image_nodes == {"app:v1": 2}
    cache.remove_node("b")
    assert cache.image_nodes == {"app:v1": 1}


def test_storage_objects_follow_their_informers(cache: ClusterCache) -> None:
    claim = {
        "metadata": {"namespace": "prod", "name": "data", "annotations": {"pv.kubernetes.io/bind-completed": "yes"}},
        "spec": {"volumeName": "pv", "accessModes": ["ReadWriteOncePod"], "storageClassName": "fast"},
        "status": {"phase": "Bound"},
    }
    volume = {"metadata": {"name": "pv"}, "spec": {"csi": {"driver": "d", "volumeHandle": "h"}}}
    storage_class = {"metadata": {"name": "fast"}, "provisioner": "d", "volumeBindingMode": "WaitForFirstConsumer"}
    csi_node = {
        "metadata": {"name": "n1"},
        "spec": {"drivers": [{"name": "d", "allocatable": {"count": 3}}, {"name": "e"}]},
    }
    for kind, obj in (
        ("PersistentVolumeClaim", claim),
        ("PersistentVolume", volume),
        ("StorageClass", storage_class),
        ("CSINode", csi_node),
    ):
        cache.set_storage(kind, storage_key(kind, obj), storage_record(kind, obj))
    volumes = cache.objects().volumes
    read = volumes.claims["prod/data"]
    assert read.bound and read.access_modes == {"ReadWriteOncePod"} and read.storage_class == "fast"
    assert volumes.volumes["pv"].csi == ("d", "h")
    assert volumes.classes["fast"].binding_mode == "WaitForFirstConsumer"
    assert volumes.csi_nodes == {"n1": {"d": 3}}, "a driver without a count has no limit"
    cache.set_storage("PersistentVolumeClaim", "prod/data", None)
    assert "prod/data" not in cache.objects().volumes.claims


def test_a_pods_claims_are_counted_on_its_node() -> None:
    claims = pod("p", namespace="prod", claims=["data"], ephemeral=["scratch"])
    info = NodeInfo.of(node("n1"), [claims, pod("q", namespace="prod", claims=["data"])])
    assert info.claim_refs == {"prod/data": 2, "prod/p-scratch": 1}
    info.remove_pod("uid-prod-p")
    assert info.claim_refs == {"prod/data": 1}


def test_assumed_volume_bindings_are_seen_by_the_next_pods_and_forgotten_on_failure(cache: ClusterCache) -> None:
    claim = {
        "metadata": {"namespace": "prod", "name": "data", "uid": "c1"},
        "spec": {"storageClassName": "local", "accessModes": ["ReadWriteOnce"]},
    }
    fresh = {"metadata": {"namespace": "prod", "name": "fresh", "uid": "c2"}, "spec": {"storageClassName": "local"}}
    volume = {"metadata": {"name": "pv"}, "spec": {"storageClassName": "local"}, "status": {"phase": "Available"}}
    for kind, obj in (("PersistentVolumeClaim", claim), ("PersistentVolumeClaim", fresh), ("PersistentVolume", volume)):
        cache.set_storage(kind, storage_key(kind, obj), storage_record(kind, obj))
    volumes = cache.objects().volumes
    plan = PodVolumes(((volumes.claims["prod/data"], volumes.volumes["pv"]),), (volumes.claims["prod/fresh"],))
    cache.assume_volumes(plan, "n1")
    assert volumes.volumes["pv"].claim_ref == ("prod", "data", "c1")
    assert volumes.claims["prod/fresh"].selected_node == "n1"
    cache.forget_volumes(plan)
    assert volumes.volumes["pv"].claim_ref is None
    assert volumes.claims["prod/fresh"].selected_node is None
