"""`explain` and `bind` against the real control plane: they read the cluster once and judge with the
scheduler's own policies; explain writes nothing, bind writes only a Binding (and its event)."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest

from tests.integration.conftest import Env

pytestmark = pytest.mark.timeout(120)

GPU_TAINT = {"key": "gpu", "value": "true", "effect": "NoSchedule"}


def run(env: Env, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(env.scheduler_args(*args), capture_output=True, text=True, timeout=60, check=False)


def scenario(env: Env) -> dict[str, str]:
    return {
        "tainted": env.node("tainted", taints=[GPU_TAINT]),
        "labelled": env.node("labelled", labels={"disk": "ssd"}),
        "small": env.node("small", cpu="500m", labels={"disk": "ssd"}),
        "plain": env.node("plain"),
    }


def test_explain_shows_every_node_every_filter_and_the_choice(env: Env) -> None:
    nodes = scenario(env)
    env.pod("p", cpu="1", nodeSelector={"disk": "ssd"})
    result = run(env, "explain", f"{env.namespace}/p", "--output", "json")
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    rows = {row["node"]: row for row in report["nodes"] if row["node"] in nodes.values()}
    assert rows[nodes["tainted"]]["filters"]["TaintToleration"] == ["node(s) had untolerated taint {gpu: true}"]
    assert rows[nodes["tainted"]]["filters"]["NodeAffinity"] == ["node(s) didn't match Pod's node affinity/selector"]
    assert rows[nodes["small"]]["filters"]["NodeResourcesFit"] == ["Insufficient cpu"]
    assert rows[nodes["plain"]]["filters"]["NodeAffinity"] == ["node(s) didn't match Pod's node affinity/selector"]
    assert rows[nodes["labelled"]]["feasible"] and rows[nodes["labelled"]]["total"] is not None
    assert report["chosen"] == nodes["labelled"]
    assert env.node_of("p") is None, "explain must not bind"
    assert env.events() == [], "explain must not write events"


def test_explain_table_names_the_failed_scheduling_message_when_nothing_fits(env: Env) -> None:
    scenario(env)
    env.pod("huge", cpu="64")
    result = run(env, "explain", f"{env.namespace}/huge")
    assert result.returncode == 0, result.stderr
    assert "NODE" in result.stdout and "TOTAL" in result.stdout
    assert "cannot be scheduled: FailedScheduling: 0/4 nodes are available:" in result.stdout
    assert "Insufficient cpu" in result.stdout


def test_bind_binds_a_fitting_node_with_the_usual_log_line_and_event(env: Env) -> None:
    nodes = scenario(env)
    env.pod("p")
    result = run(env, "bind", f"{env.namespace}/p", nodes["plain"])
    assert result.returncode == 0, result.stderr
    assert f"Bound {env.namespace}/p -> {nodes['plain']}" in result.stderr
    assert env.node_of("p") == nodes["plain"]
    assert [e.message for e in env.events("Scheduled")] == [
        f"Successfully assigned {env.namespace}/p to {nodes['plain']}"
    ]


@pytest.mark.parametrize(
    "node, pod_kwargs, reason",
    [
        pytest.param("tainted", {}, "node(s) had untolerated taint {gpu: true}", id="a tainted node is refused"),
        pytest.param("cordoned", {}, "node(s) were unschedulable", id="a cordoned node is refused"),
        pytest.param("small", {"cpu": "1"}, "Insufficient cpu", id="a too-small node is refused"),
    ],
)
def test_bind_refuses_a_node_that_fails_a_filter_and_binds_nothing(
    env: Env, node: str, pod_kwargs: dict[str, str], reason: str
) -> None:
    scenario(env)
    env.node("cordoned", cordoned=True)
    env.pod("p", **pod_kwargs)
    result = run(env, "bind", f"{env.namespace}/p", f"{env.namespace}-{node}")
    assert result.returncode == 1
    assert reason in result.stderr
    assert env.node_of("p") is None
    assert env.events() == []


def test_bind_force_binds_the_tainted_case_and_names_what_it_overrode(env: Env) -> None:
    nodes = scenario(env)
    env.pod("p")
    result = run(env, "bind", f"{env.namespace}/p", nodes["tainted"], "--force")
    assert result.returncode == 0, result.stderr
    assert "--force: binding" in result.stderr and "untolerated taint {gpu: true}" in result.stderr
    assert env.node_of("p") == nodes["tainted"]


def test_bind_dry_run_reports_and_binds_nothing(env: Env) -> None:
    nodes = scenario(env)
    env.pod("p")
    result = run(env, "bind", f"{env.namespace}/p", nodes["plain"], "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "dry run, nothing bound" in result.stdout
    assert env.node_of("p") is None


def test_bind_errors_exit_2_with_one_line(env: Env) -> None:
    nodes = scenario(env)
    env.pod("bound", nodeName=nodes["plain"])
    cases = {
        f"pod {env.namespace}/missing not found": ("bind", f"{env.namespace}/missing", nodes["plain"]),
        f"pod {env.namespace}/bound is already bound to node {nodes['plain']}": (
            "bind",
            f"{env.namespace}/bound",
            nodes["plain"],
        ),
        "node no-such-node not found": ("bind", f"{env.namespace}/bound-not", "no-such-node"),
        "expected <namespace>/<pod>": ("bind", "just-a-name", nodes["plain"]),
    }
    env.pod("bound-not")
    for expected, args in cases.items():
        result = run(env, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert expected in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_bind_refuses_a_pod_being_deleted(env: Env) -> None:
    nodes = scenario(env)
    env.pod("p", container={"name": "c"})
    env.core.patch_namespaced_pod("p", env.namespace, {"metadata": {"finalizers": ["example.com/hold"]}})
    env.core.delete_namespaced_pod("p", env.namespace)
    try:
        result = run(env, "bind", f"{env.namespace}/p", nodes["plain"])
        assert result.returncode == 2
        assert "is being deleted" in result.stderr
    finally:
        env.core.patch_namespaced_pod("p", env.namespace, {"metadata": {"finalizers": None}})
