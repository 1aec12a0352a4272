"""The benchmark harness's pure parts: percentiles, API request counting, and the placement checker that must
catch any pod on a node it may not use."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import ApiClient, V1Node, V1Pod

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from contenders import kube_scheduler_config
from measure import median, percentile, request_delta, request_key, request_totals
from placement import cpu_spread, needs_from_dict, needs_of, offer_from_dict, offer_of, violations
from preemption import PreemptionLedger
from raw_limit import round_robin
from workload import (
    LOW_PER_NODE,
    PREEMPTOR_PRIORITY,
    high_pod_bytes,
    low_pod_bytes,
    node_body,
    priority_class_body,
)

import bench

Json = dict[str, Any]
TAINT = {"key": "dedicated", "value": "infra", "effect": "NoSchedule"}


def node(name: str, cpu: str = "4", memory: str = "16Gi", pods: str = "110", **extra: Any) -> V1Node:
    resources = {"cpu": cpu, "memory": memory, "pods": pods}
    return V1Node.model_validate(
        {
            "metadata": {"name": name, "labels": extra.get("labels", {})},
            "spec": {"taints": extra.get("taints", []), "unschedulable": extra.get("cordoned", False)},
            "status": {"allocatable": resources, "capacity": resources},
        }
    )


def pod(name: str, on: str | None, cpu: str = "100m", memory: str = "128Mi", **spec: Any) -> V1Pod:
    body: Json = {
        "containers": [{"name": "c", "image": "pause", "resources": {"requests": {"cpu": cpu, "memory": memory}}}]
    }
    if on:
        body["nodeName"] = on
    body.update(spec)
    return V1Pod.model_validate({"metadata": {"name": name, "namespace": "ns"}, "spec": body})


def check(pods: list[V1Pod], nodes: list[V1Node]) -> list[str]:
    return violations([needs_of(p) for p in pods], [offer_of(n) for n in nodes])


# --- percentiles ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values, q, expected",
    [
        pytest.param([5.0], 99, 5.0, id="a single value is every percentile"),
        pytest.param([1.0, 2.0, 3.0, 4.0], 50, 2.5, id="the median of an even count interpolates"),
        pytest.param([3.0, 1.0, 2.0], 50, 2.0, id="input order does not matter"),
        pytest.param(list(range(1, 101)), 99, 99.01, id="p99 of 1..100 interpolates like numpy"),
        pytest.param([1.0, 10.0], 0, 1.0, id="p0 is the minimum"),
        pytest.param([1.0, 10.0], 100, 10.0, id="p100 is the maximum"),
    ],
)
def test_percentile(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == pytest.approx(expected)


def test_percentile_of_nothing_is_nan_and_out_of_range_is_an_error() -> None:
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_median_skips_missing_values() -> None:
    assert median([None, 3.0, math.nan, 1.0]) == 2.0
    assert median([None]) is None


# --- API request counts ---------------------------------------------------------------------------------


def series(verb: str, resource: str, value: int, *, code: str = "200", group: str = "", sub: str = "") -> str:
    labels = f'code="{code}",component="apiserver",dry_run="",group="{group}",resource="{resource}",scope="resource"'
    return f'apiserver_request_total{{{labels},subresource="{sub}",verb="{verb}",version="v1"}} {value}'


METRICS = "\n".join(
    [
        "# HELP apiserver_request_total [STABLE] Counter of apiserver requests",
        series("POST", "pods", 10, code="201", sub="binding"),
        series("POST", "pods", 2, code="409", sub="binding"),
        series("LIST", "pods", 3),
        series("POST", "events", 4, code="201", group="events.k8s.io"),
        series("GET", "", 7, sub="/readyz"),
        'apiserver_request_duration_seconds_count{verb="LIST"} 99',
    ]
)


def test_request_totals_sum_codes_per_verb_and_resource() -> None:
    assert request_totals(METRICS) == {
        "POST pods/binding": 12,
        "LIST pods": 3,
        "POST events.k8s.io/events": 4,
        "GET /readyz": 7,
    }


def test_request_key_names_non_resource_paths() -> None:
    assert request_key({"verb": "GET", "resource": "", "subresource": "openapi/v3"}) == "GET /openapi/v3"


def test_request_delta_subtracts_the_background_and_drops_noise() -> None:
    before = {"POST pods/binding": 10, "PUT coordination.k8s.io/leases": 5}
    after = {"POST pods/binding": 110, "PUT coordination.k8s.io/leases": 7, "LIST pods": 1}
    delta = request_delta(before, after, background_per_second={"PUT coordination.k8s.io/leases": 0.1}, seconds=20)
    assert delta == {"POST pods/binding": 100, "LIST pods": 1}


# --- placement checks -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pods, nodes, broken",
    [
        pytest.param([pod("a", "n1")], [node("n1")], [], id="a plain pod on a plain node is fine"),
        pytest.param([pod("a", None)], [node("n1", taints=[TAINT])], [], id="pending pods are not checked"),
        pytest.param(
            [pod("a", "n1")],
            [node("n1", taints=[TAINT])],
            ["ns/a on n1: untolerated taint {dedicated: infra}:NoSchedule"],
            id="a pod without tolerations on a NoSchedule node is a violation",
        ),
        pytest.param(
            [pod("a", "n1", tolerations=[{"key": "dedicated", "operator": "Equal", "value": "infra"}])],
            [node("n1", taints=[TAINT])],
            [],
            id="a matching toleration with an empty effect tolerates the taint",
        ),
        pytest.param(
            [pod("a", "n1", tolerations=[{"operator": "Exists"}])],
            [node("n1", taints=[{**TAINT, "effect": "NoExecute"}])],
            [],
            id="an empty-key Exists toleration tolerates everything",
        ),
        pytest.param(
            [pod("a", "n1", tolerations=[{"key": "dedicated", "value": "other"}])],
            [node("n1", taints=[TAINT])],
            ["ns/a on n1: untolerated taint {dedicated: infra}:NoSchedule"],
            id="an Equal toleration with another value does not tolerate",
        ),
        pytest.param(
            [pod("a", "n1")],
            [node("n1", taints=[{**TAINT, "effect": "PreferNoSchedule"}])],
            [],
            id="PreferNoSchedule is only a preference",
        ),
        pytest.param(
            [pod("a", "n1", nodeSelector={"zone": "a"})],
            [node("n1", labels={"zone": "b"})],
            ["ns/a on n1: nodeSelector zone=a does not match"],
            id="a nodeSelector the node's labels do not match is a violation",
        ),
        pytest.param(
            [pod("a", "n1", nodeSelector={"zone": "a"})], [node("n1", labels={"zone": "a"})], [], id="a match is fine"
        ),
        pytest.param(
            [pod("a", "n1")],
            [node("n1", cordoned=True)],
            ["ns/a on n1: node is unschedulable (cordoned)"],
            id="a cordoned node takes no new pods",
        ),
        pytest.param(
            [pod("a", "n1", cpu="3"), pod("b", "n1", cpu="1500m")],
            [node("n1")],
            ["n1: cpu requested 4500 > allocatable 4000"],
            id="requests over allocatable cpu are a violation of the node",
        ),
        pytest.param(
            [pod("a", "n1", cpu="2", memory="8Gi"), pod("b", "n1", cpu="2", memory="8Gi")],
            [node("n1")],
            [],
            id="requests exactly at allocatable fit",
        ),
        pytest.param(
            [pod("a", "n1", memory="1Gi"), pod("b", "n1", memory="1Gi")],
            [node("n1", memory="1.5Gi")],
            ["n1: memory requested 2147483648 > allocatable 1610612736"],
            id="memory counts too",
        ),
        pytest.param(
            [pod("a", "n1"), pod("b", "n1")],
            [node("n1", pods="1")],
            ["n1: pods requested 2 > allocatable 1"],
            id="so does the pod count",
        ),
        pytest.param(
            [pod("a", "gone")], [node("n1")], ["ns/a: bound to unknown node gone"], id="a pod on a missing node"
        ),
    ],
)
def test_violations(pods: list[V1Pod], nodes: list[V1Node], broken: list[str]) -> None:
    assert check(pods, nodes) == broken


def test_every_broken_rule_is_reported() -> None:
    broken = check([pod("a", "n1", cpu="5", nodeSelector={"zone": "a"})], [node("n1", taints=[TAINT])])
    assert len(broken) == 3


def test_init_containers_count_as_their_maximum_with_the_regular_sum() -> None:
    big_init = pod(
        "a", "n1", cpu="100m", initContainers=[{"name": "i", "image": "x", "resources": {"requests": {"cpu": "5"}}}]
    )
    assert check([big_init], [node("n1")]) == ["n1: cpu requested 5000 > allocatable 4000"]


def test_models_and_api_json_give_the_same_facts() -> None:
    sanitize: Callable[[object], Any] = ApiClient().sanitize_for_serialization
    p = pod("a", "n1", cpu="250m", nodeSelector={"zone": "a"}, tolerations=[{"operator": "Exists"}])
    n = node("n1", labels={"zone": "a"}, taints=[TAINT])
    assert needs_from_dict(sanitize(p)) == needs_of(p)
    assert offer_from_dict(sanitize(n)) == offer_of(n)


def test_cpu_spread_is_in_percentage_points_of_allocatable() -> None:
    spread = cpu_spread([needs_of(pod("a", "n1", cpu="2"))], [offer_of(node("n1")), offer_of(node("n2"))])
    assert (spread.stdev, spread.max_minus_min, spread.mean) == (25.0, 50.0, 25.0)


def test_round_robin_keeps_to_the_rules_and_spreads() -> None:
    pods = [needs_of(pod(f"p{i}", None, nodeSelector={"zone": "a"} if i == 0 else None)) for i in range(4)]
    nodes = [offer_of(n) for n in (node("n1", taints=[TAINT]), node("n2", labels={"zone": "a"}), node("n3"))]
    plan = round_robin(pods, nodes)
    assert [(p.name, n) for p, n in plan] == [("p0", "n2"), ("p1", "n3"), ("p2", "n2"), ("p3", "n3")]
    assert violations([dataclasses.replace(p, node_name=n) for p, n in plan], nodes) == []


def test_kube_scheduler_config_raises_qps_only_when_asked() -> None:
    default = kube_scheduler_config("s", "/k", None)
    assert "qps" not in default
    assert "leaderElect: false" in default
    assert "- schedulerName: s" in default
    assert "qps: 5000\n  burst: 5000" in kube_scheduler_config("s", "/k", 5000)


# --- the preemption scenario ----------------------------------------------------------------------------


def ledger() -> PreemptionLedger:
    return PreemptionLedger(lambda name: name.startswith("high-"))


def test_a_preemptor_bound_after_its_nodes_low_pods_are_gone_is_fine() -> None:
    book = ledger()
    for i in range(4):
        book.bound(f"low-{i}", "n1")
    book.bound("low-9", "n2")
    for i in range(4):
        book.deleted(f"low-{i}", at=float(i))
    book.bound("high-0", "n1")
    assert book.summary() == {"victims_deleted": 4, "victims_elsewhere": 0, "preemption_violations": 0}
    assert book.victims == {"low-0": 0.0, "low-1": 1.0, "low-2": 2.0, "low-3": 3.0}


def test_a_preemptor_bound_while_a_low_pod_remains_on_its_node_is_a_violation() -> None:
    book = ledger()
    for i in range(4):
        book.bound(f"low-{i}", "n1")
    for i in range(3):
        book.deleted(f"low-{i}", at=0.0)
    book.bound("high-0", "n1")
    book.deleted("low-3", at=1.0)  # too late: the server had already committed the bind
    assert book.summary()["preemption_violations"] == 1
    assert book.broken == ["high-0 bound to n1 while 1 low-priority pod(s) were still there: low-3"]


def test_victims_on_a_node_no_preemptor_took_are_counted_apart() -> None:
    book = ledger()
    book.bound("low-0", "n1")
    book.bound("low-1", "n2")
    book.deleted("low-0", at=0.0)
    book.deleted("low-1", at=0.0)
    book.bound("high-0", "n1")
    assert book.summary() == {"victims_deleted": 2, "victims_elsewhere": 1, "preemption_violations": 0}


def test_repeated_events_and_deleted_preemptors_do_not_count_twice() -> None:
    book = ledger()
    book.bound("low-0", "n1")
    book.deleted("low-0", at=0.0)
    book.deleted("low-0", at=1.0)
    book.deleted("never-bound", at=1.0)
    book.bound("high-0", "n1")
    book.bound("high-0", "n1")
    book.deleted("high-0", at=2.0)
    assert book.summary() == {"victims_deleted": 1, "victims_elsewhere": 0, "preemption_violations": 0}
    assert book.victims == {"low-0": 0.0}


def test_preemption_pods_are_scheduler_perfs_and_four_low_pods_leave_no_room_for_a_preemptor() -> None:
    low = json.loads(low_pod_bytes(0, "ns", "s"))
    high = json.loads(high_pod_bytes(0, "ns", "s", "pc"))
    assert low["spec"]["containers"][0]["resources"]["requests"] == {"cpu": "900m", "memory": "500Mi"}
    assert high["spec"]["containers"][0]["resources"]["limits"] == {"cpu": "3970m", "memory": "500Mi"}
    assert "priority" not in high["spec"]  # the Priority admission plugin rejects it; the class sets it
    assert high["spec"]["priorityClassName"] == "pc"
    assert "priorityClassName" not in low["spec"]
    assert low["spec"]["terminationGracePeriodSeconds"] == high["spec"]["terminationGracePeriodSeconds"] == 0
    assert priority_class_body("pc")["value"] == PREEMPTOR_PRIORITY == 9999999
    tainted = offer_from_dict(node_body(0))  # every 10th bench node is tainted: the pods tolerate it
    one = dataclasses.replace(needs_from_dict(low), node_name=tainted.name)
    full = [dataclasses.replace(one, name=f"l{i}") for i in range(LOW_PER_NODE)]
    assert violations(full, [tainted]) == []
    fifth = dataclasses.replace(full[0], name="l4")
    assert violations([*full, fifth], [tainted]) == [f"{tainted.name}: cpu requested 4500 > allocatable 4000"]
    preemptor = dataclasses.replace(needs_from_dict(high), node_name=tainted.name)
    assert violations([full[0], preemptor], [tainted]) != []
    assert violations([preemptor], [tainted]) == []


def preemption_scenario(*flags: str) -> tuple[int, int, int]:
    args = bench.parse_args(["--scenario", "preemption", *flags])
    (scenario,) = args.scenarios
    return scenario.nodes, scenario.init_pods, scenario.pods


def test_the_preemption_scenario_defaults_to_a_tenth_of_scheduler_perfs_and_is_in_the_default_set() -> None:
    assert preemption_scenario() == (100, 400, 100)
    assert preemption_scenario("--preemption-nodes", "1000") == (1000, 4000, 1000)  # PreemptionBasic/1000Nodes
    assert preemption_scenario("--preemption-nodes", "10", "--preemption-pods", "3") == (10, 40, 3)
    assert "preemption" in [s.name for s in bench.parse_args([]).scenarios]


@pytest.mark.parametrize(
    "flags",
    [
        pytest.param(["--preemption-init-pods", "401"], id="a fifth low pod does not fit on a node"),
        pytest.param(["--preemption-pods", "101"], id="a second preemptor does not fit on a node"),
    ],
)
def test_preemption_sizes_that_cannot_fit_are_refused(flags: list[str]) -> None:
    with pytest.raises(SystemExit):
        bench.parse_args(["--scenario", "preemption", *flags])
