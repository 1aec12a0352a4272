"""The README's "In a real cluster (kind)" section, step by step, as a user runs it — docker build, kind load,
kubectl apply, rollout status, test-pod, `kubectl logs … | grep Bound` — then what the README promises around it:
leader take-over, /metrics, preemption, a StatefulSet's claims on kind's default StorageClass, the memory limit, a
policy change, a bad policy, uninstall. The steps share one cluster and run in this order (conftest.py); each is
timed."""

from __future__ import annotations

import json
import re
import time
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes.utils import parse_quantity

from tests.e2e.conftest import HACK, ROOT, Kind, run, timed, wait_for

pytestmark = pytest.mark.e2e

NAME = "my-scheduler"
LABEL = "app.kubernetes.io/name=my-scheduler"
EXTRA = "my-scheduler-e2e=extra"  # pods this test adds beyond test-pod.yaml
METRICS = "http://127.0.0.1:10251"


def deployment_manifest() -> dict[str, Any]:
    documents = yaml.safe_load_all((ROOT / "rbac-deploy.yaml").read_text())
    return next(d for d in documents if d and d["kind"] == "Deployment")


def scheduler_pods(kind: Kind) -> list[dict[str, Any]]:
    """The scheduler's pods that are not being deleted."""
    pods = kind.get("pods", "-n", "kube-system", "-l", LABEL)["items"]
    return [p for p in pods if not p["metadata"].get("deletionTimestamp")]


def leader(kind: Kind) -> str | None:
    """The pod holding the Lease (its identity starts with the pod's host name)."""
    holder = kind.get("lease", "-n", "kube-system", NAME)["spec"].get("holderIdentity") or ""
    names = [p["metadata"]["name"] for p in scheduler_pods(kind)]
    return next((n for n in names if n in holder), None)


def readme_logs(kind: Kind) -> str:
    """`kubectl -n kube-system logs -l app.kubernetes.io/name=my-scheduler`, as the README runs it."""
    return kind.kubectl("-n", "kube-system", "logs", "-l", LABEL).stdout


def pause_pod(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default", "labels": {"my-scheduler-e2e": "extra"}},
        "spec": {
            "schedulerName": NAME,
            "containers": [
                {
                    "name": "pause",
                    "image": "registry.k8s.io/pause:3.10",
                    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
                }
            ],
        },
    }


def create_pods(kind: Kind, names: list[str]) -> None:
    kind.kubectl(
        "apply",
        "-f",
        "-",
        stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": [pause_pod(n) for n in names]}),
    )


def running_on(kind: Kind, name: str) -> str | None:
    pod = kind.get("pod", "-n", "default", name)
    return pod["spec"].get("nodeName") if pod["status"].get("phase") == "Running" else None


def scheduled_events(kind: Kind, pod: str) -> list[dict[str, Any]]:
    selector = f"involvedObject.name={pod},reason=Scheduled"
    events: list[dict[str, Any]] = kind.get("events", "-n", "default", "--field-selector", selector)["items"]
    return events


def nothing_listed(kind: Kind, *args: str) -> bool:
    return not kind.get(*args)["items"]


def exec_python(kind: Kind, pod: str, code: str) -> str:
    return kind.kubectl("-n", "kube-system", "exec", pod, "--", "python", "-c", code).stdout


def metrics(kind: Kind, pod: str) -> str:
    return exec_python(kind, pod, f"import urllib.request as u; print(u.urlopen('{METRICS}/metrics').read().decode())")


def sample(text: str, name: str) -> float | None:
    """The value of the first sample of a metric (any labels) in Prometheus text format."""
    match = re.search(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else None


class KubeEditor:
    """KUBE_EDITOR for `kubectl edit`: a sed substitution on the file kubectl opens."""

    @staticmethod
    def replacing(old: str, new: str) -> dict[str, str]:
        return {"KUBE_EDITOR": f"sed -i s/{old}/{new}/"}


def test_docker_build_from_the_unchanged_dockerfile(kind: Kind) -> None:
    """`docker build -t my-scheduler:dev .` (buildah, FROM the python:3.11-slim stand-in)."""
    with timed("image build: buildah bud of the Dockerfile (docker build)"):
        run(HACK / "build-image.sh", "my-scheduler:dev")


def test_kind_load(kind: Kind) -> None:
    """`kind load docker-image my-scheduler:dev`: the image in the node's containerd, as the pod spec names it."""
    with timed("image load into the node's containerd (kind load)"):
        run(HACK / "load-image.sh", "my-scheduler:dev")
    images = kind.ctr("images", "ls", "-q").split()
    assert "docker.io/library/my-scheduler:dev" in images


def test_apply_and_rollout(kind: Kind) -> None:
    """`kubectl apply -f rbac-deploy.yaml` then `rollout status`: two replicas Ready under the restricted context."""
    with timed("kubectl apply -f rbac-deploy.yaml + rollout status (2/2 Ready)"):
        kind.kubectl("apply", "-f", str(ROOT / "rbac-deploy.yaml"))
        kind.kubectl("-n", "kube-system", "rollout", "status", "deploy/my-scheduler", "--timeout=180s")
    pods = scheduler_pods(kind)
    assert len(pods) == 2
    for pod in pods:
        (status,) = pod["status"]["containerStatuses"]
        assert status["ready"] and status["restartCount"] == 0, status
    wait_for("a leader", lambda: leader(kind), timeout=30)


def test_test_pod_is_bound_and_runs(kind: Kind) -> None:
    """`kubectl apply -f test-pod.yaml`; `kubectl -n kube-system logs -l … | grep Bound` shows the plain line."""
    (node,) = [n["metadata"]["name"] for n in kind.get("nodes")["items"]]
    expected = f"Bound default/test-pod -> {node}"
    with timed("kubectl apply -f test-pod.yaml -> `Bound default/test-pod` in kubectl logs"):
        kind.kubectl("apply", "-f", str(ROOT / "test-pod.yaml"))
        line = wait_for(
            expected,
            lambda: next((x for x in readme_logs(kind).splitlines() if "Bound" in x), None),
            timeout=60,
        )
    assert line.endswith(expected), f"`grep Bound` gives {line!r}, the README promises {expected!r}"
    assert not line.lstrip().startswith("{"), "the Deployment's log is plain text, not JSON"
    with timed("test-pod Running"):
        wait_for("test-pod Running", lambda: running_on(kind, "test-pod"), timeout=60)
    (event,) = scheduled_events(kind, "test-pod")
    assert event["message"] == f"Successfully assigned default/test-pod to {node}"
    assert event.get("reportingComponent") == NAME, event  # events.k8s.io/v1's reportingController


def test_leader_takeover_binds_nothing_twice(kind: Kind) -> None:
    """Pods arriving while the leader pod is deleted: the standby takes the Lease, every pod is bound once."""
    old = wait_for("a leader", lambda: leader(kind), timeout=30)
    names = [f"takeover-{i}" for i in range(6)]
    create_pods(kind, names[:3])
    start = time.monotonic()
    kind.kubectl("-n", "kube-system", "delete", "pod", old, "--wait=false")
    create_pods(kind, names[3:])
    with timed("leader pod deleted -> standby holds the Lease"):
        new = wait_for("a new leader", lambda: next((n for n in [leader(kind)] if n != old), None), timeout=60)
    takeover = time.monotonic() - start
    with timed("pods created around the take-over all Running"):
        for name in names:
            wait_for(f"{name} Running", partial(running_on, kind, name), timeout=90)
    for name in names:
        events = scheduled_events(kind, name)
        assert len(events) == 1 and (events[0].get("count") or 1) == 1, (name, events)
    log = kind.kubectl("-n", "kube-system", "logs", new).stdout
    assert not re.search(r"not bound|already assigned", log), log
    kind.kubectl("-n", "kube-system", "rollout", "status", "deploy/my-scheduler", "--timeout=120s")
    print(f"take-over: {old} -> {new} in {takeover:.1f} s")


def test_metrics_inside_the_pod(kind: Kind) -> None:
    """/metrics on port 10251 from inside each pod: the leader counts its binds, the standby says it is not leading."""
    create_pods(kind, ["metrics"])
    wait_for("metrics Running", lambda: running_on(kind, "metrics"), timeout=60)
    current = wait_for("a leader", lambda: leader(kind), timeout=30)
    with timed("/metrics read inside the pods (kubectl exec)"):
        for pod in scheduler_pods(kind):
            text = metrics(kind, pod["metadata"]["name"])
            if pod["metadata"]["name"] == current:
                assert sample(text, "my_scheduler_leader") == 1.0
                scheduled = re.search(
                    r'^scheduler_schedule_attempts_total\{[^}]*result="scheduled"[^}]*\} (\S+)$', text, re.MULTILINE
                )
                assert scheduled and float(scheduled.group(1)) >= 1, text
            else:
                assert sample(text, "my_scheduler_leader") == 0.0, text


def test_the_pods_network_ends_at_the_node(kind: Kind) -> None:
    """The scheduler reached the API server through the `kubernetes` Service (the one DNAT rule); the pod's routes
    go to the service range and the node's link only: no default route, so nothing beyond this machine."""
    pod = scheduler_pods(kind)[0]["metadata"]["name"]
    routes = exec_python(kind, pod, "print(open('/proc/net/route').read())").splitlines()[1:]
    destinations = {line.split()[1] for line in routes if line.strip()}
    assert destinations and "00000000" not in destinations, routes
    env = exec_python(kind, pod, "import os; print(os.environ['KUBERNETES_SERVICE_HOST'])").strip()
    assert env == kind.get("service", "-n", "default", "kubernetes")["spec"]["clusterIP"]


def test_explain_and_bind_from_inside_the_pod(kind: Kind) -> None:
    """The README's `kubectl -n kube-system exec deploy/my-scheduler -- python /app/scheduler.py explain|bind …`:
    the ServiceAccount's role is enough for both, on a pod no scheduler serves."""
    (node,) = [n["metadata"]["name"] for n in kind.get("nodes")["items"]]
    manifest = pause_pod("by-hand")
    manifest["spec"]["schedulerName"] = "nobody"
    kind.kubectl("apply", "-f", "-", stdin=json.dumps(manifest))
    in_pod = ["-n", "kube-system", "exec", "deploy/my-scheduler", "--", "python", "/app/scheduler.py"]
    with timed("explain + bind inside the scheduler's pod (kubectl exec)"):
        explained = kind.kubectl(*in_pod, "explain", "default/by-hand").stdout
        assert node in explained, explained
        kind.kubectl(*in_pod, "bind", "default/by-hand", node)
        wait_for("by-hand Running", lambda: running_on(kind, "by-hand"), timeout=60)
    (event,) = scheduled_events(kind, "by-hand")
    assert event["message"] == f"Successfully assigned default/by-hand to {node}"


def requested_cpu(kind: Kind, node: str) -> int:
    """Millicores the pods on `node` request (kubectl describe's "Allocated resources"), as the scheduler counts."""
    pods = kind.get("pods", "-A", "--field-selector", f"spec.nodeName={node}")["items"]
    return sum(
        int(parse_quantity(c.get("resources", {}).get("requests", {}).get("cpu", "0")) * 1000)
        for p in pods
        if p["status"].get("phase") not in ("Succeeded", "Failed") and not p["metadata"].get("deletionTimestamp")
        for c in p["spec"]["containers"]
    )


def test_preemption_with_a_real_kubelet(kind: Kind) -> None:
    """A pod of a higher PriorityClass that fits nowhere: the scheduler marks the running lower-priority pod
    (DisruptionTarget), deletes it, the kubelet stops it (its grace period, not 0), and the pod takes its room."""
    (node,) = kind.get("nodes")["items"]
    name = node["metadata"]["name"]
    free = int(parse_quantity(node["status"]["allocatable"]["cpu"]) * 1000) - requested_cpu(kind, name)
    size = f"{free - 100}m"  # one such pod fits, two do not
    kind.kubectl(
        "apply",
        "-f",
        "-",
        stdin=json.dumps(
            {
                "apiVersion": "scheduling.k8s.io/v1",
                "kind": "PriorityClass",
                "metadata": {"name": "e2e-high"},
                "value": 1000,
            }
        ),
    )
    low, high = pause_pod("batch"), pause_pod("urgent")
    for pod in (low, high):
        pod["spec"]["containers"][0]["resources"]["requests"]["cpu"] = size
    low["spec"]["terminationGracePeriodSeconds"] = 5
    high["spec"]["priorityClassName"] = "e2e-high"
    kind.kubectl("apply", "-f", "-", stdin=json.dumps(low))
    wait_for("batch Running", lambda: running_on(kind, "batch"), timeout=60)
    batch_uid = kind.get("pod", "-n", "default", "batch")["metadata"]["uid"]
    try:
        with timed("a higher-priority pod preempts a running one (kubelet stops it) and runs"):
            kind.kubectl("apply", "-f", "-", stdin=json.dumps(high))
            wait_for("urgent Running", lambda: running_on(kind, "urgent"), timeout=90)
        urgent_uid = kind.get("pod", "-n", "default", "urgent")["metadata"]["uid"]
        found = kind.kubectl("get", "pod", "-n", "default", "batch", check=False)
        assert (
            found.returncode != 0
            or json.loads(kind.kubectl("get", "pod", "-n", "default", "batch", "-o", "json").stdout)["metadata"]["uid"]
            != batch_uid
        ), "the victim is still there"
        selector = "involvedObject.name=batch,reason=Preempted"
        (event,) = kind.get("events", "-n", "default", "--field-selector", selector)["items"]
        assert event["message"] == f"Preempted by pod {urgent_uid} on node {name}", event
        selector = "involvedObject.name=urgent,reason=FailedScheduling"
        failed = kind.get("events", "-n", "default", "--field-selector", selector)["items"]
        assert any("preemption: found a potential placement" in e["message"] for e in failed), failed
    finally:
        kind.kubectl("delete", "pod", "-n", "default", "urgent", "batch", "--ignore-not-found", "--wait=true")
        kind.kubectl("delete", "priorityclass", "e2e-high", "--ignore-not-found")


STATEFULSET = "e2e-volumes"
REPLICAS = 2


def statefulset_manifests() -> list[dict[str, Any]]:
    """A headless Service and a StatefulSet whose pods (my-scheduler's) each get a claim from a volumeClaimTemplate
    without a class: the DefaultStorageClass admission gives it the default, kind's `standard`. Each pod writes its
    name into its volume and waits; the image is the python:3.11-slim stand-in the node has (storage.sh loads it
    as the provisioner's helper image), since nothing can be pulled here."""
    labels = {"app": STATEFULSET}
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": STATEFULSET, "namespace": "default"},
        "spec": {"clusterIP": "None", "selector": labels, "ports": [{"port": 80}]},
    }
    writer = 'echo "$POD_NAME" > /data/written-by; trap "exit 0" TERM; sleep infinity & wait'
    container = {
        "name": "writer",
        "image": "docker.io/library/python:3.11-slim",
        "imagePullPolicy": "Never",
        "command": ["sh", "-c", writer],
        "env": [{"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}},
    }
    statefulset = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": STATEFULSET, "namespace": "default"},
        "spec": {
            "serviceName": STATEFULSET,
            "replicas": REPLICAS,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"schedulerName": NAME, "terminationGracePeriodSeconds": 5, "containers": [container]},
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "16Mi"}}},
                }
            ],
        },
    }
    return [service, statefulset]


def scheduler_logs(kind: Kind) -> str:
    """The whole log of each scheduler pod (`kubectl logs -l` keeps only the last 10 lines of each)."""
    return "".join(
        kind.kubectl("-n", "kube-system", "logs", p["metadata"]["name"]).stdout for p in scheduler_pods(kind)
    )


def absent(kind: Kind, *args: str) -> bool:
    return kind.kubectl("get", *args, check=False).returncode != 0


def test_statefulset_on_kinds_default_storage_class(kind: Kind) -> None:
    """A StatefulSet with a volumeClaimTemplate on kind's default class `standard` (rancher.io/local-path,
    WaitForFirstConsumer; hack/e2e/storage.sh): for each pod my-scheduler writes the selected node on its claim and
    waits, the real provisioner makes the volume on that node, kube-controller-manager's PV binder binds the claim,
    then the pod is bound and runs, and what it writes lands in the provisioner's directory on the node. Deleting
    the claims deletes the volumes and their directories (the provisioner's teardown helper pod)."""
    (node,) = [n["metadata"]["name"] for n in kind.get("nodes")["items"]]
    standard = kind.get("storageclass", "standard")
    assert standard["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    assert (standard["provisioner"], standard["volumeBindingMode"]) == ("rancher.io/local-path", "WaitForFirstConsumer")
    volumes_dir = kind.kubeconfig.parent / "node" / "local-path-provisioner"  # the node's /var/local-path-provisioner
    pods = [f"{STATEFULSET}-{i}" for i in range(REPLICAS)]
    claims = [f"data-{pod}" for pod in pods]
    kind.kubectl(
        "apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": statefulset_manifests()})
    )
    directories: list[Path] = []
    try:
        with timed(f"StatefulSet, {REPLICAS} claims on `standard`: selected node, provisioned, bound, pods Running"):
            for pod in pods:  # OrderedReady: one after the other
                wait_for(f"{pod} Running", partial(running_on, kind, pod), timeout=120)
        log = scheduler_logs(kind)
        for pod, claim in zip(pods, claims, strict=True):
            pvc = kind.get("pvc", "-n", "default", claim)
            assert pvc["spec"]["storageClassName"] == "standard", pvc
            assert pvc["metadata"]["annotations"]["volume.kubernetes.io/selected-node"] == node, pvc
            assert pvc["status"]["phase"] == "Bound", pvc
            pv = kind.get("pv", pvc["spec"]["volumeName"])
            assert pv["spec"]["claimRef"]["name"] == claim and pv["status"]["phase"] == "Bound", pv
            (term,) = pv["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"]
            assert term["matchExpressions"] == [
                {"key": "kubernetes.io/hostname", "operator": "In", "values": [node]}
            ], pv
            directory = Path(pv["spec"]["hostPath"]["path"])
            assert directory.parent == volumes_dir, directory
            directories.append(directory)
            assert (directory / "written-by").read_text().strip() == pod
            assert f"Selected node {node} for claim default/{claim}" in log, log
            assert f"Bound default/{pod} -> {node}" in log, log
    finally:
        with timed("StatefulSet and claims deleted -> volumes and their directories gone (teardown helper pods)"):
            kind.kubectl("delete", "statefulset,service", "-n", "default", STATEFULSET, "--ignore-not-found")
            for pod in pods:
                wait_for(f"{pod} gone", partial(absent, kind, "pod", "-n", "default", pod), timeout=60)
            kind.kubectl("delete", "pvc", "-n", "default", *claims, "--ignore-not-found", "--wait=true")
            wait_for("no PersistentVolume left", partial(nothing_listed, kind, "pv"), timeout=90)
            wait_for(
                "no helper pod left", partial(nothing_listed, kind, "pods", "-n", "local-path-storage"), timeout=30
            )
    for directory in directories:
        assert not directory.exists(), f"{directory}: the teardown helper did not remove it"


def test_memory_limit_in_the_pods_cgroup(kind: Kind) -> None:
    """The Deployment's memory limit, as the container's own memory cgroup reports it."""
    (container,) = deployment_manifest()["spec"]["template"]["spec"]["containers"]
    limit = int(parse_quantity(container["resources"]["limits"]["memory"]))
    pod = scheduler_pods(kind)[0]["metadata"]["name"]
    read = (
        "import pathlib as p; v1 = p.Path('/sys/fs/cgroup/memory/memory.limit_in_bytes'); "
        "print((v1 if v1.exists() else p.Path('/sys/fs/cgroup/memory.max')).read_text())"
    )
    assert int(exec_python(kind, pod, read)) == limit


def edit_policy_and_restart(kind: Kind, old: str, new: str) -> None:
    """`kubectl edit configmap my-scheduler-config` (replacing `old` by `new`), then `rollout restart`."""
    editor = KubeEditor.replacing(old, new)
    kind.kubectl("-n", "kube-system", "edit", "configmap", "my-scheduler-config", env=editor)
    kind.kubectl("-n", "kube-system", "rollout", "restart", "deploy/my-scheduler")


def test_policy_change_by_configmap_edit_and_rollout_restart(kind: Kind) -> None:
    """`kubectl edit configmap` + `rollout restart`: the new pods start with the new policy and schedule with it."""
    with timed("kubectl edit configmap + rollout restart -> new policy in the starting line"):
        edit_policy_and_restart(kind, "LeastAllocated", "MostAllocated")
        kind.kubectl("-n", "kube-system", "rollout", "status", "deploy/my-scheduler", "--timeout=180s")
    for pod in scheduler_pods(kind):
        log = kind.kubectl("-n", "kube-system", "logs", pod["metadata"]["name"]).stdout
        starting = next(line for line in log.splitlines() if "starting:" in line)
        assert "MostAllocated" in starting and "LeastAllocated" not in starting, starting
    wait_for("a leader", lambda: leader(kind), timeout=30)
    create_pods(kind, ["after-restart"])
    wait_for("after-restart Running", lambda: running_on(kind, "after-restart"), timeout=60)


def test_a_bad_policy_crash_loops_with_a_one_line_reason(kind: Kind) -> None:
    """An unknown policy in the ConfigMap: the new pod goes into CrashLoopBackOff, its log is the reason in one line;
    the old pods keep scheduling (the rollout cannot make progress)."""
    edit_policy_and_restart(kind, "MostAllocated", "NoSuchPolicy")

    def crash_looping() -> str | None:
        for pod in scheduler_pods(kind):
            for status in pod["status"].get("containerStatuses", []):
                if (status["state"].get("waiting") or {}).get("reason") == "CrashLoopBackOff":
                    return str(pod["metadata"]["name"])
        return None

    with timed("bad ConfigMap + rollout restart -> CrashLoopBackOff"):
        pod = wait_for("a pod in CrashLoopBackOff", crash_looping, timeout=120)
    log = kind.kubectl("-n", "kube-system", "logs", pod, "--previous").stdout
    lines = [line for line in log.splitlines() if line.strip()]
    assert len(lines) == 1 and "NoSuchPolicy" in lines[0], log
    ready = [p for p in scheduler_pods(kind) if all(s["ready"] for s in p["status"].get("containerStatuses", []))]
    assert len(ready) == 2, "the old replicas stay up while the new one crash-loops"
    create_pods(kind, ["during-bad-rollout"])
    wait_for("during-bad-rollout Running", lambda: running_on(kind, "during-bad-rollout"), timeout=60)


def test_uninstall_leaves_nothing(kind: Kind) -> None:
    """The README's uninstall: nothing of the scheduler is left in the cluster, and nothing runs on the node."""
    kind.kubectl("delete", "pod", "-n", "default", "-l", EXTRA, "--wait=false")
    with timed("uninstall (kubectl delete -f …) -> nothing left, nothing running on the node"):
        kind.kubectl("delete", "-f", str(ROOT / "test-pod.yaml"), "-f", str(ROOT / "rbac-deploy.yaml"))
        kind.kubectl("-n", "kube-system", "delete", "lease", NAME)
        for resource, namespace, selector in [
            ("pods", "kube-system", LABEL),
            ("replicasets", "kube-system", LABEL),
            ("pods", "default", ""),
        ]:
            args = [resource, "-n", namespace, *(["-l", selector] if selector else [])]
            wait_for(f"no {resource} in {namespace}", partial(nothing_listed, kind, *args), timeout=120)
        for kind_, name, namespace in [
            ("serviceaccount", NAME, "kube-system"),
            ("configmap", "my-scheduler-config", "kube-system"),
            ("deployment", NAME, "kube-system"),
            ("lease", NAME, "kube-system"),
            ("clusterrole", NAME, ""),
            ("clusterrolebinding", NAME, ""),
        ]:
            found = kind.kubectl("get", kind_, name, *(["-n", namespace] if namespace else []), check=False)
            assert found.returncode != 0 and "NotFound" in found.stderr, (kind_, name, found.stdout)
        wait_for("no container running on the node", lambda: not kind.ctr("tasks", "ls", "-q").split(), timeout=60)
    pods_cgroups = list(Path("/sys/fs/cgroup/memory/my-scheduler-e2e/kubepods").glob("**/pod*"))
    assert not pods_cgroups, pods_cgroups
