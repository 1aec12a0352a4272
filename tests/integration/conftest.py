"""A real control plane for integration tests: `hack/cluster.sh up` once per session (or the cluster in
KUBECONFIG, if it is a local one), a fresh namespace and scheduler name per test, and helpers for nodes,
pods and running the scheduler. Pods are deleted with grace 0 (there is no kubelet to confirm)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from kubeapi import PodRef

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "hack"))
from local_cluster import bin_dir, start_cluster, stop_cluster
from nodes import node_manifest

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Cluster:
    kubeconfig: str
    dir: Path | None
    core: client.CoreV1Api

    @property
    def bin(self) -> Path:
        return bin_dir()

    def kubectl(self, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "KUBECONFIG": self.kubeconfig}
        return subprocess.run(
            [str(self.bin / "kubectl"), *args], env=env, check=check, capture_output=True, text=True, input=input
        )


def body(manifest: Mapping[str, Any]) -> Any:
    """A manifest in the API's JSON as a request body: the client sends a dict as it is, though its types name
    only its models."""
    return manifest


def node_name(pod: client.V1Pod) -> str | None:
    return pod.spec.node_name if pod.spec else None


def conditions(pod: client.V1Pod) -> list[client.V1PodCondition]:
    return (pod.status.conditions if pod.status else None) or []


def service_account_token(core: client.CoreV1Api, name: str, namespace: str, seconds: int = 600) -> str:
    """A bound token of the ServiceAccount, from the TokenRequest API."""
    request = core.create_namespaced_service_account_token(
        name, namespace, body({"spec": {"expirationSeconds": seconds}})
    )
    assert request.status is not None
    return str(request.status.token)


def core_api(kubeconfig: str) -> client.CoreV1Api:
    configuration = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    configuration.connection_pool_maxsize = 16
    return client.CoreV1Api(client.ApiClient(configuration))


def _is_local(kubeconfig: str) -> bool:
    with open(kubeconfig) as f:
        doc = yaml.safe_load(f)
    current = next(c for c in doc["contexts"] if c["name"] == doc["current-context"])
    server = next(c for c in doc["clusters"] if c["name"] == current["context"]["cluster"])["cluster"]["server"]
    return "://127.0.0.1:" in server or "://localhost:" in server


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    existing = os.environ.get("KUBECONFIG")
    if existing:
        if not _is_local(existing):
            pytest.exit(f"KUBECONFIG={existing} is not a 127.0.0.1 cluster; tests only talk to a local one", 2)
        yield Cluster(existing, None, core_api(existing))
        return
    directory = tmp_path_factory.mktemp("cluster")
    kubeconfig = start_cluster(directory)
    try:
        yield Cluster(kubeconfig, directory, core_api(kubeconfig))
    finally:
        stop_cluster(directory)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


@dataclass
class Env:
    """One test's corner of the cluster: its namespace, scheduler name, nodes and pods; `logs` is the folder
    for its schedulers' output (the test's tmp_path)."""

    cluster: Cluster
    namespace: str
    scheduler_name: str
    logs: Path
    nodes: list[str] = field(default_factory=list)

    @property
    def core(self) -> client.CoreV1Api:
        return self.cluster.core

    def node(self, name: str, **kwargs: Any) -> str:
        name = f"{self.namespace}-{name}"
        self.core.create_node(body(node_manifest(name, **kwargs)), _preload_content=False)
        self.nodes.append(name)
        return name

    def pod(
        self,
        name: str,
        *,
        cpu: str | None = "100m",
        memory: str | None = None,
        scheduler: str | None = None,
        **spec: Any,
    ) -> client.V1Pod:
        requests = {k: v for k, v in {"cpu": cpu, "memory": memory}.items() if v}
        container = {"name": "c", "image": "registry.k8s.io/pause:3.10", "resources": {"requests": requests}}
        container.update(spec.pop("container", {}))
        labels = spec.pop("labels", {})
        manifest = {
            "metadata": {"name": name, "labels": labels},
            "spec": {"schedulerName": scheduler or self.scheduler_name, "containers": [container], **spec},
        }
        return self.core.create_namespaced_pod(self.namespace, body(manifest))

    def read(self, name: str) -> client.V1Pod:
        return self.core.read_namespaced_pod(name, self.namespace)

    def node_of(self, name: str) -> str | None:
        return node_name(self.read(name))

    def placements(self) -> dict[str, str | None]:
        return {PodRef.of(p).name: node_name(p) for p in self.core.list_namespaced_pod(self.namespace).items}

    def events(self, reason: str | None = None) -> list[client.CoreV1Event]:
        items = self.core.list_namespaced_event(self.namespace).items
        return [e for e in items if reason is None or e.reason == reason]

    def scheduler_args(self, *args: str) -> list[str]:
        return [
            sys.executable,
            str(ROOT / "scheduler.py"),
            "--scheduler-name",
            self.scheduler_name,
            "--kubeconfig",
            self.cluster.kubeconfig,
            *args,
        ]

    def run_once(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.scheduler_args("--once", *args), check=False, capture_output=True, text=True, timeout=timeout
        )

    def scheduler(self, *args: str, log: Path | None = None) -> AbstractContextManager[Scheduler]:
        """The daemon in the background; on exit SIGTERM, and it must stop promptly with exit 0."""
        return in_background(self.scheduler_args(*args), log or self.logs / f"{self.scheduler_name}.log")


@contextmanager
def in_background(command: list[str], log: Path, stop_timeout: float = 20) -> Iterator[Scheduler]:
    """Run `command` with its output in `log`; on exit SIGTERM it and record its exit code."""
    with open(log, "w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, text=True)
    running = Scheduler(process, log)
    try:
        yield running
    finally:
        stopping = time.monotonic()
        process.terminate()
        running.exit_code = process.wait(timeout=stop_timeout)
        running.stop_seconds = time.monotonic() - stopping


@dataclass
class Scheduler:
    process: subprocess.Popen[str]
    log: Path
    exit_code: int | None = None
    stop_seconds: float | None = None  # from SIGTERM to exit

    def output(self) -> str:
        return self.log.read_text()


def wait_for(predicate: Callable[[], Any], timeout: float = 30, interval: float = 0.2, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def kube_scheduler_binary() -> Path:
    bin_dir = subprocess.run(
        [str(ROOT / "hack" / "build.sh"), "--bin-dir"], check=True, capture_output=True, text=True
    ).stdout.strip()
    return Path(bin_dir) / "kube-scheduler"


@contextmanager
def kube_scheduler(
    kubeconfig: str,
    scheduler_name: str,
    directory: Path,
    *,
    settings: Mapping[str, Any] | None = None,
    args: Sequence[str] = (),
) -> Iterator[Path]:
    """Stock kube-scheduler with one profile (kube's default plugins), plus any top-level `settings` of its
    KubeSchedulerConfiguration and extra flags. `--secure-port 0` turns off its HTTPS endpoint, and with it the
    delegated authentication/authorization lookups; nothing else is needed against our API server. Yields its
    log's path."""
    config = directory / f"{scheduler_name}.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kubescheduler.config.k8s.io/v1",
                "kind": "KubeSchedulerConfiguration",
                "profiles": [{"schedulerName": scheduler_name}],
                "leaderElection": {"leaderElect": False},
                "clientConnection": {"kubeconfig": kubeconfig},
                **(settings or {}),
            }
        )
    )
    log = directory / f"{scheduler_name}.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            [str(kube_scheduler_binary()), "--config", str(config), "--secure-port", "0", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield log
    finally:
        process.terminate()
        process.wait(timeout=20)


@contextmanager
def namespace_env(cluster: Cluster, logs: Path) -> Iterator[Env]:
    """A fresh namespace and scheduler name; on exit its pods (grace 0), its nodes and the namespace go."""
    namespace = unique("t")
    cluster.core.create_namespace(body({"metadata": {"name": namespace}}))
    test_env = Env(cluster, namespace, scheduler_name=unique("sched"), logs=logs)
    try:
        yield test_env
    finally:
        cluster.core.delete_collection_namespaced_pod(namespace, grace_period_seconds=0)
        for node in test_env.nodes:
            cluster.core.delete_node(node, _preload_content=False)
        cluster.core.delete_namespace(namespace, _preload_content=False)


@pytest.fixture
def env(cluster: Cluster, tmp_path: Path) -> Iterator[Env]:
    with namespace_env(cluster, tmp_path) as test_env:
        yield test_env
