"""The volume filters end to end (issue 14): claims, volumes and CSINodes on the real control plane, the daemon
with its default profile. Claims are created bound (spec.volumeName and the PV controller's bind-completed
annotation), as the PV controller would leave them: no controller runs here."""

from __future__ import annotations

import functools
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from tests.integration.conftest import Env, body, conditions, kube_scheduler, unique, wait_for

HOSTNAME = "kubernetes.io/hostname"
FAST = ("--interval", "0.3")
DRIVER = "csi.volumes.test"


@pytest.fixture
def volumes(env: Env) -> Iterator[list[str]]:
    """The names of the PersistentVolumes (cluster-scoped) a test made: deleted after it, with the CSINodes of its
    nodes (no garbage collector runs here)."""
    made: list[str] = []
    yield made
    for name in made:
        env.core.delete_persistent_volume(name, _preload_content=False)
    storage = client.StorageV1Api(env.core.api_client)
    registered = {n.metadata.name for n in storage.list_csi_node().items if n.metadata}
    for node in env.nodes:
        if node in registered:
            storage.delete_csi_node(node, _preload_content=False)


def make_volume(
    env: Env, made: list[str], name: str, *, on: str | None = None, csi: bool = False, modes: list[str] | None = None
) -> str:
    """A CSI volume, a local volume `on` a node, or else a hostPath volume (no node affinity, not CSI)."""
    name = f"{env.namespace}-{name}"
    source: dict[str, Any] = {"hostPath": {"path": "/mnt/data"}}
    if csi:
        source = {"csi": {"driver": DRIVER, "volumeHandle": name}}
    elif on is not None:
        source = {"local": {"path": "/mnt/data"}}
    spec: dict[str, Any] = {
        "capacity": {"storage": "1Gi"},
        "accessModes": modes or ["ReadWriteOnce"],
        "persistentVolumeReclaimPolicy": "Retain",
        "storageClassName": "",
        **source,
    }
    if on is not None:  # a local volume must say where it is
        spec["nodeAffinity"] = {
            "required": {
                "nodeSelectorTerms": [{"matchExpressions": [{"key": HOSTNAME, "operator": "In", "values": [on]}]}]
            }
        }
    env.core.create_persistent_volume(body({"metadata": {"name": name}, "spec": spec}))
    made.append(name)
    return name


def make_claim(env: Env, name: str, *, volume: str | None = None, modes: list[str] | None = None) -> str:
    """A claim, bound to `volume` as the PV controller leaves a bound claim, or unbound without a class."""
    meta: dict[str, Any] = {"name": name}
    spec: dict[str, Any] = {
        "accessModes": modes or ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "1Gi"}},
        "storageClassName": "",
    }
    if volume is not None:
        meta["annotations"] = {"pv.kubernetes.io/bind-completed": "yes"}
        spec["volumeName"] = volume
    env.core.create_namespaced_persistent_volume_claim(env.namespace, body({"metadata": meta, "spec": spec}))
    return name


def with_claims(*claims: str) -> dict[str, Any]:
    return {"volumes": [{"name": f"v{i}", "persistentVolumeClaim": {"claimName": c}} for i, c in enumerate(claims)]}


def failed_scheduling(env: Env, pod: str) -> str:
    """The message of the first FailedScheduling event for `pod`."""
    events = wait_for(
        lambda: [e for e in env.events("FailedScheduling") if e.involved_object.name == pod],
        what=f"a FailedScheduling event for {pod}",
    )
    return str(events[0].message)


def test_a_static_volume_for_one_node_takes_the_pod_there(env: Env, volumes: list[str]) -> None:
    env.node("a")
    b = env.node("b")
    make_claim(env, "data", volume=make_volume(env, volumes, "pv", on=b))
    env.pod("p", **with_claims("data"))
    with env.scheduler(*FAST):
        assert wait_for(lambda: env.node_of("p"), what="p bound") == b


def test_the_bind_command_judges_volumes_as_the_daemon_does(env: Env, volumes: list[str]) -> None:
    """`bind` reads the claims and volumes too: a bound claim's volume on b lets the pod go to b, not to a."""
    a = env.node("a")
    b = env.node("b")
    make_claim(env, "data", volume=make_volume(env, volumes, "pv", on=b))
    env.pod("p", scheduler="nobody", **with_claims("data"))

    def bind(node: str) -> subprocess.CompletedProcess[str]:
        command = env.scheduler_args("bind", f"{env.namespace}/p", node)
        return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)

    refused = bind(a)
    assert refused.returncode == 1, refused.stderr
    assert "node(s) didn't match PersistentVolume's node affinity" in refused.stderr
    bound = bind(b)
    assert bound.returncode == 0, bound.stderr
    assert env.node_of("p") == b


def test_an_unbound_immediate_claim_fails_with_kubes_message(env: Env) -> None:
    env.node("a")
    env.node("b")
    make_claim(env, "unbound")
    env.pod("p", **with_claims("unbound"))
    with env.scheduler(*FAST):
        message = failed_scheduling(env, "p")
    assert message.startswith("0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims.")
    assert env.node_of("p") is None


def test_a_missing_claim_fails_with_kubes_message(env: Env) -> None:
    env.node("a")
    env.pod("p", **with_claims("nowhere"))
    with env.scheduler(*FAST):
        message = failed_scheduling(env, "p")
    assert message.startswith('0/1 nodes are available: persistentvolumeclaim "nowhere" not found.')


def test_a_read_write_once_pod_claim_in_use_is_unschedulable(env: Env, volumes: list[str]) -> None:
    a = env.node("a")
    env.node("b")
    rwop = ["ReadWriteOncePod"]
    make_claim(env, "single", volume=make_volume(env, volumes, "pv", csi=True, modes=rwop), modes=rwop)
    env.pod("user", nodeName=a, **with_claims("single"))
    env.pod("second", **with_claims("single"))
    with env.scheduler(*FAST):
        message = failed_scheduling(env, "second")
    assert message.startswith(
        "0/2 nodes are available: 2 node(s) unavailable due to PersistentVolumeClaim with ReadWriteOncePod access "
        "mode already in-use by another pod."
    ), message
    assert env.node_of("second") is None


def make_csi_node(env: Env, node: str, limit: int) -> None:
    """The CSINode a CSI driver's node plugin would register, with its volume limit."""
    manifest = {
        "metadata": {"name": node},
        "spec": {"drivers": [{"name": DRIVER, "nodeID": node, "allocatable": {"count": limit}}]},
    }
    client.StorageV1Api(env.core.api_client).create_csi_node(body(manifest))


def test_a_node_at_its_volume_limit_is_filtered_with_kubes_reason(env: Env, volumes: list[str]) -> None:
    a, b = env.node("a"), env.node("b")
    make_csi_node(env, a, 1)
    make_csi_node(env, b, 2)
    for name in ("first", "second", "third"):
        make_claim(env, name, volume=make_volume(env, volumes, name, csi=True))
    env.pod("on-a", nodeName=a, **with_claims("first"))
    env.pod("on-b", nodeName=b, **with_claims("second"))
    env.pod("p", **with_claims("third"))
    with env.scheduler(*FAST):
        assert wait_for(lambda: env.node_of("p"), what="p bound") == b  # a has no room for another volume
        env.pod("q", **with_claims("third", "first"))  # two more volumes on b, one more on a: neither fits
        message = failed_scheduling(env, "q")
    assert message.startswith("0/2 nodes are available: 2 node(s) exceed max volume count."), message


# --- WaitForFirstConsumer: the scheduler binds, kube-controller-manager's PV binder completes ------------------


@pytest.fixture
def storage_class(env: Env) -> Iterator[str]:
    """A WaitForFirstConsumer class without a provisioner (static local volumes), deleted after the test."""
    name = f"{env.namespace}-local"
    storage = client.StorageV1Api(env.core.api_client)
    manifest = {
        "metadata": {"name": name},
        "provisioner": "kubernetes.io/no-provisioner",
        "volumeBindingMode": "WaitForFirstConsumer",
    }
    storage.create_storage_class(body(manifest))
    yield name
    storage.delete_storage_class(name, _preload_content=False)


@pytest.fixture
def pv_controller(env: Env) -> Iterator[Path]:
    """kube-controller-manager with only the PersistentVolume binder (its node lifecycle controller would mark
    the simulated nodes unreachable), against the test's API server. Yields its log."""
    log = env.logs / "kube-controller-manager.log"
    command = [
        str(env.cluster.bin / "kube-controller-manager"),
        "--kubeconfig",
        env.cluster.kubeconfig,
        "--controllers=persistentvolume-binder",
        "--leader-elect=false",
        "--secure-port=0",
    ]
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield log
    finally:
        process.terminate()
        process.wait(timeout=20)


def make_class_volume(env: Env, made: list[str], name: str, storage_class: str, *, on: str) -> str:
    name = f"{env.namespace}-{name}"
    term = {"matchExpressions": [{"key": HOSTNAME, "operator": "In", "values": [on]}]}
    spec = {
        "capacity": {"storage": "1Gi"},
        "accessModes": ["ReadWriteOnce"],
        "persistentVolumeReclaimPolicy": "Retain",
        "storageClassName": storage_class,
        "local": {"path": "/mnt/data"},
        "nodeAffinity": {"required": {"nodeSelectorTerms": [term]}},
    }
    env.core.create_persistent_volume(body({"metadata": {"name": name}, "spec": spec}))
    made.append(name)
    return name


def make_class_claim(env: Env, name: str, storage_class: str) -> None:
    spec = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "1Gi"}},
        "storageClassName": storage_class,
    }
    env.core.create_namespaced_persistent_volume_claim(env.namespace, body({"metadata": {"name": name}, "spec": spec}))


def test_a_wait_for_first_consumer_claim_is_bound_to_a_fitting_volume_before_the_pod(
    env: Env, volumes: list[str], storage_class: str, pv_controller: Path
) -> None:
    env.node("a")
    b = env.node("b")
    volume = make_class_volume(env, volumes, "local-b", storage_class, on=b)
    make_class_claim(env, "data", storage_class)
    env.pod("p", **with_claims("data"))
    with env.scheduler(*FAST) as scheduler:
        assert wait_for(lambda: env.node_of("p"), timeout=60, what="p bound") == b
    claim = env.core.read_namespaced_persistent_volume_claim("data", env.namespace).to_dict()
    assert claim["spec"]["volume_name"] == volume
    assert (claim["metadata"]["annotations"] or {}).get("pv.kubernetes.io/bind-completed") == "yes"
    ref = env.core.read_persistent_volume(volume).to_dict()["spec"]["claim_ref"]
    assert (ref["name"], ref["uid"]) == ("data", claim["metadata"]["uid"])
    log = scheduler.output()
    # The claimRef was written, the claim bound (the binder waited for it), and only then the pod's Binding.
    assert log.index(f"Bound volume {volume} to claim") < log.index(f"Bound {env.namespace}/p"), log


def test_a_wait_for_first_consumer_claim_without_a_fitting_volume_fails_with_kubes_reason(
    env: Env, volumes: list[str], storage_class: str
) -> None:
    env.node("a")
    env.node("b")
    make_class_claim(env, "data", storage_class)
    env.pod("p", **with_claims("data"))
    with env.scheduler(*FAST):
        message = failed_scheduling(env, "p")
    assert message.startswith("0/2 nodes are available: 2 node(s) didn't find available persistent volumes to bind."), (
        message
    )


def test_claims_not_bound_in_time_fail_the_bind_and_the_writes_are_undone(env: Env, tmp_path: Path) -> None:
    """A class whose provisioner never answers: the binder writes the selected node on the claim, nobody
    provisions, so after bindTimeoutSeconds the pod is not bound, the failure is reported as kube reports a
    PreBind failure, and the selected node is taken off the claim again."""
    storage = client.StorageV1Api(env.core.api_client)
    class_name = f"{env.namespace}-silent"
    silent = {"provisioner": "example.com/silent", "volumeBindingMode": "WaitForFirstConsumer"}
    storage.create_storage_class(body({"metadata": {"name": class_name}, **silent}))
    try:
        b = env.node("b")
        make_class_claim(env, "data", class_name)
        env.pod("p", **with_claims("data"))
        config = tmp_path / "config.yaml"
        profile = {
            "schedulerName": env.scheduler_name,
            "pluginConfig": [{"name": "VolumeBinding", "args": {"bindTimeoutSeconds": 2}}],
        }
        kind = {"apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration"}
        config.write_text(yaml.safe_dump({**kind, "profiles": [profile]}))
        with env.scheduler("--config", str(config), *FAST) as scheduler:
            assert wait_for(lambda: _selected_node(env, "data"), what="the selected node on the claim") == b
            message = failed_scheduling(env, "p")
        assert message == 'running PreBind plugin "VolumeBinding": binding volumes: context deadline exceeded'
        assert env.node_of("p") is None
        assert _selected_node(env, "data") is None, scheduler.output()
        assert scheduler.exit_code == 0
    finally:
        storage.delete_storage_class(class_name, _preload_content=False)


def _selected_node(env: Env, claim: str) -> str | None:
    meta = env.core.read_namespaced_persistent_volume_claim(claim, env.namespace).metadata
    return ((meta.annotations if meta else None) or {}).get("volume.kubernetes.io/selected-node")


# --- agreement with the stock kube-scheduler ---------------------------------------------------------------


def _outcome(env: Env, pod: str) -> str | None:
    """ "bound to <node>", or the PodScheduled=False message; None while undecided."""
    read = env.read(pod)
    if read.spec and read.spec.node_name:
        return f"bound to {read.spec.node_name}"
    condition = next((c for c in conditions(read) if c.type == "PodScheduled" and c.status == "False"), None)
    return condition.message if condition else None


def _both(env: Env, case: str) -> tuple[str, str] | None:
    ours, theirs = _outcome(env, f"{case}-ours"), _outcome(env, f"{case}-kube")
    return (ours, theirs) if ours and theirs else None


def test_kube_scheduler_decides_the_same_and_says_the_same(env: Env, volumes: list[str], tmp_path: Path) -> None:
    """Each case's pod twice, once per scheduler, on the same nodes and claims: the same node where one fits, the
    same message (preemption's included) where none does."""
    a, b = env.node("a"), env.node("b")
    make_csi_node(env, a, 1)
    make_csi_node(env, b, 0)
    rwop = ["ReadWriteOncePod"]
    make_claim(env, "on-b", volume=make_volume(env, volumes, "pv-b", on=b))
    make_claim(env, "unbound")
    # Not CSI: kube stops at a node's first failing filter, we report them all (README), so the cases keep apart.
    make_claim(env, "single", volume=make_volume(env, volumes, "pv-single", modes=rwop), modes=rwop)
    make_claim(env, "first", volume=make_volume(env, volumes, "first", csi=True))
    make_claim(env, "second", volume=make_volume(env, volumes, "second", csi=True))
    env.pod("user", nodeName=a, **with_claims("single", "first"))
    cases = {"static": ["on-b"], "immediate": ["unbound"], "missing": ["nowhere"], "rwop": ["single"]}
    cases["limit"] = ["second"]
    kube_name = unique("kube")
    for case, claims in cases.items():
        env.pod(f"{case}-ours", **with_claims(*claims))
        env.pod(f"{case}-kube", scheduler=kube_name, **with_claims(*claims))
    with kube_scheduler(env.cluster.kubeconfig, kube_name, tmp_path) as kube_log, env.scheduler(*FAST):
        outcomes = {
            case: wait_for(
                functools.partial(_both, env, case),
                what=f"both schedulers to decide {case} (kube's log: {kube_log})",
            )
            for case in cases
        }
    assert outcomes["static"] == (f"bound to {b}", f"bound to {b}")
    # kube 1.37's PostFilter fails with an internal "not found" after a PreFilter rejected the pod (its log:
    # "Status after running PostFilter plugins for pod" status="not found"), so its message then ends in
    # " not found" where ours says preemption is not helpful: those cases are compared up to the PostFilter part.
    prefilter = {"immediate", "missing"}
    disagreements = {
        case: {"ours": o, "kube-scheduler": k}
        for case, (o, k) in outcomes.items()
        if (o.split(". preemption: ")[0] + "." != k.removesuffix(" not found") if case in prefilter else o != k)
    }
    assert not disagreements, yaml.safe_dump(disagreements, width=200)
