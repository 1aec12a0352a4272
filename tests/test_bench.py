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
from contenders import CONTENDERS, kube_scheduler_config
from measure import (
    median,
    percentile,
    request_delta,
    request_key,
    request_totals,
    sample_summary,
    throughput_samples,
)
from placement import (
    Needs,
    NodeTerm,
    Requirement,
    cpu_spread,
    needs_from_dict,
    needs_of,
    offer_from_dict,
    offer_of,
    violations,
)
from preemption import PreemptionLedger
from raw_limit import events_path, round_robin, scheduled_event_body
from report import summarise
from workload import (
    LOW_PER_NODE,
    PREEMPTOR_PRIORITY,
    ZONE_LABEL,
    high_pod_bytes,
    low_pod_bytes,
    node_body,
    perf_node_body,
    perf_pod_body,
    priority_class_body,
)

import bench
from policies.config import load

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


# --- throughput as scheduler_perf samples it -----------------------------------------------------------------


@pytest.mark.parametrize(
    "binds, expected",
    [
        pytest.param([0.2, 0.5, 0.9], [], id="a run shorter than a second gives no sample, as in scheduler_perf"),
        pytest.param(
            [i / 10 + 0.05 for i in range(50)],
            [10.0, 10.0, 10.0, 10.0],
            id="the first tick that sees a bind only starts",
        ),
        pytest.param([2.5, 3.5, 3.6], [2.0], id="ticks before the first bind are not samples"),
        pytest.param(
            [0.5, 1.5, 3.5],
            [1.0, 0.5, 0.5],
            id="an empty second is folded into the next sample, recorded once per second",
        ),
        pytest.param(
            [0.5, 1.0, 1.2], [1.0], id="a bind at the tick counts for that tick; the last tick sees every pod"
        ),
    ],
)
def test_throughput_samples(binds: list[float], expected: list[float]) -> None:
    assert throughput_samples(binds, origin=0.0) == pytest.approx(expected)


def test_throughput_samples_count_from_the_origin() -> None:
    assert throughput_samples([100.5, 101.5, 102.5], origin=100.0) == [1.0, 1.0]
    assert throughput_samples([], origin=0.0) == []


def test_sample_summary_is_scheduler_perfs_average_and_nearest_rank_percentiles() -> None:
    summary = sample_summary([float(x) for x in (10, 1, 9, 2, 8, 3, 7, 4, 6, 5)])
    assert summary == {"average": 5.5, "p50": 5.0, "p90": 9.0, "p95": 10.0, "p99": 10.0}
    assert sample_summary([]) is None


# --- kube's scheduler_perf workloads ---------------------------------------------------------------------------


def container(body: Json) -> Json:
    (only,) = body["spec"]["containers"]
    result: Json = only
    return result


def test_perf_pods_are_scheduler_perfs_pod_default() -> None:
    body = perf_pod_body("default", 7, "ns", "s")
    assert body["metadata"] == {"name": "pod-000007", "namespace": "ns"}
    assert body["spec"]["schedulerName"] == "s"
    assert container(body) == {
        "image": "registry.k8s.io/pause:3.10.2",
        "name": "pause",
        "ports": [{"containerPort": 80}],
        "resources": {"limits": {"cpu": "100m", "memory": "500Mi"}, "requests": {"cpu": "100m", "memory": "500Mi"}},
    }
    assert set(body["spec"]) == {"schedulerName", "containers"}


def test_perf_anti_affinity_pods_avoid_green_pods_of_both_namespaces_per_host() -> None:
    body = perf_pod_body("pod-anti-affinity", 0, "run", "s", namespaces=("run", "run-init"))
    assert body["metadata"]["labels"] == {"color": "green"}
    (term,) = body["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term == {
        "labelSelector": {"matchLabels": {"color": "green"}},
        "topologyKey": "kubernetes.io/hostname",
        "namespaces": ["run", "run-init"],
    }


def test_perf_node_affinity_and_spreading_pods() -> None:
    affinity = perf_pod_body("node-affinity", 0, "ns", "s")["spec"]["affinity"]["nodeAffinity"]
    (term,) = affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert term == {"matchExpressions": [{"key": ZONE_LABEL, "operator": "In", "values": ["zone1", "zone2"]}]}
    spreading = perf_pod_body("topology-spreading", 0, "ns", "s")
    assert spreading["metadata"]["labels"] == {"color": "blue"}
    assert spreading["spec"]["topologySpreadConstraints"] == [
        {"maxSkew": 5, "topologyKey": ZONE_LABEL, "whenUnsatisfiable": "DoNotSchedule",
         "labelSelector": {"matchLabels": {"color": "blue"}}}
    ]  # fmt: skip
    with pytest.raises(ValueError):
        perf_pod_body("no-such-template", 0, "ns", "s")


def test_perf_nodes_are_node_default_with_zones_round_robin() -> None:
    bodies = [perf_node_body(i, ("moon-1", "moon-2", "moon-3")) for i in range(4)]
    assert [b["metadata"]["labels"][ZONE_LABEL] for b in bodies] == ["moon-1", "moon-2", "moon-3", "moon-1"]
    offer = offer_from_dict(bodies[0])
    assert (offer.cpu, offer.memory, offer.pods, offer.taints) == (4000, 32 * 2**30, 110, ())
    assert bodies[0]["metadata"]["labels"]["kubernetes.io/hostname"] == "bench-node-00000"
    assert ZONE_LABEL not in perf_node_body(0, ())["metadata"]["labels"]
    assert (
        perf_node_body(0, ())["metadata"]["labels"]["bench-shape"] != node_body(0)["metadata"]["labels"]["bench-shape"]
    )


def perf_scenarios(*flags: str) -> dict[str, tuple[int, int, int]]:
    args = bench.parse_args(["--scenario", "perf", *flags])
    return {s.name: (s.nodes, s.init_pods, s.pods) for s in args.scenarios}


def test_perf_scenarios_have_scheduler_perfs_5000_node_sizes_and_scale_down() -> None:
    assert perf_scenarios() == {
        "sched-basic": (5000, 1000, 10000),  # SchedulingBasic/5000Nodes_10000Pods
        "topology-spreading": (5000, 5000, 5000),  # TopologySpreading/5000Nodes_5000Pods
        "pod-anti-affinity": (5000, 1000, 2000),  # SchedulingPodAntiAffinity/5000Nodes_2000Pods
        "node-affinity": (5000, 5000, 10000),  # SchedulingNodeAffinity/5000Nodes_10000Pods
    }
    assert perf_scenarios("--perf-nodes", "100") == {
        "sched-basic": (100, 20, 200),
        "topology-spreading": (100, 100, 100),
        "pod-anti-affinity": (100, 20, 40),
        "node-affinity": (100, 100, 200),
    }
    assert "sched-basic" not in [s.name for s in bench.parse_args([]).scenarios]
    assert "sched-basic" in [s.name for s in bench.parse_args(["--scenario", "all"]).scenarios]


def test_scenarios_of_one_node_shape_run_together() -> None:
    args = bench.parse_args(["--scenario", "scale,sched-basic,steady-scale,pod-anti-affinity", "--perf-nodes", "5000"])
    shapes = [s.shape for s in args.scenarios]
    assert shapes == sorted(shapes, key=lambda shape: (shape != "bench", shape))


# --- placement checks of the scheduler_perf constraints --------------------------------------------------------


def perf_pod(template: str, i: int, on: str | None, namespace: str = "ns", **kwargs: Any) -> Needs:
    body = perf_pod_body(template, i, namespace, "s", **kwargs)
    if on:
        body["spec"]["nodeName"] = on
    return needs_from_dict(body)


ZONED = [offer_from_dict(perf_node_body(i, ("zone1", "zone3"))) for i in range(2)]  # bench-node-00000: zone1


@pytest.mark.parametrize(
    "pods, broken",
    [
        pytest.param([perf_pod("node-affinity", 0, "bench-node-00000")], [], id="node affinity matched"),
        pytest.param(
            [perf_pod("node-affinity", 0, "bench-node-00001")],
            ["ns/pod-000000 on bench-node-00001: required node affinity does not match"],
            id="node affinity not matched",
        ),
        pytest.param(
            [
                perf_pod("pod-anti-affinity", 0, "bench-node-00000", namespaces=("ns",)),
                perf_pod("pod-anti-affinity", 1, "bench-node-00001", namespaces=("ns",)),
            ],
            [],
            id="anti-affinity pods on different hosts",
        ),
        pytest.param(
            [
                perf_pod("pod-anti-affinity", 0, "bench-node-00000", namespaces=("ns", "init")),
                perf_pod("pod-anti-affinity", 1, "bench-node-00000", "init", namespaces=("ns", "init")),
            ],
            [
                "ns/pod-000000 on bench-node-00000: pod anti-affinity: init/pod-000001 on "
                "kubernetes.io/hostname=bench-node-00000",
                "init/pod-000001 on bench-node-00000: pod anti-affinity: ns/pod-000000 on "
                "kubernetes.io/hostname=bench-node-00000",
            ],
            id="anti-affinity pods of the listed namespaces on one host",
        ),
        pytest.param(
            [
                perf_pod("pod-anti-affinity", 0, "bench-node-00000", namespaces=("ns",)),
                perf_pod("pod-anti-affinity", 1, "bench-node-00000", "other", namespaces=("other",)),
            ],
            [],
            id="anti-affinity ignores namespaces its term does not list",
        ),
    ],
)
def test_perf_constraint_violations(pods: list[Needs], broken: list[str]) -> None:
    assert violations(pods, ZONED) == broken


def test_a_node_term_without_requirements_matches_no_node_and_match_fields_name_the_node() -> None:
    nothing = NodeTerm()
    by_name = NodeTerm(fields=(Requirement("metadata.name", "In", ("bench-node-00001",)),))
    assert [nothing.matches(o) for o in ZONED] == [False, False]
    assert [by_name.matches(o) for o in ZONED] == [False, True]


@pytest.mark.parametrize(
    "requirement, labels, matches",
    [
        pytest.param(Requirement("k", "NotIn", ("a",)), {}, True, id="NotIn holds without the label"),
        pytest.param(Requirement("k", "Exists"), {"k": ""}, True, id="Exists with an empty value"),
        pytest.param(Requirement("k", "DoesNotExist"), {"k": "a"}, False, id="DoesNotExist with the label"),
        pytest.param(Requirement("k", "Gt", ("5",)), {"k": "6"}, True, id="Gt compares integers"),
        pytest.param(Requirement("k", "Lt", ("5",)), {"k": "x"}, False, id="Lt of a non-integer is false"),
    ],
)
def test_requirements(requirement: Requirement, labels: dict[str, str], matches: bool) -> None:
    assert requirement.matches(labels) is matches


def test_topology_spread_skew_over_max_skew_is_a_violation() -> None:
    nodes = [offer_from_dict(perf_node_body(i, ("moon-1", "moon-2", "moon-3"))) for i in range(3)]
    even = [perf_pod("topology-spreading", i, nodes[i % 3].name) for i in range(9)]
    assert violations(even, nodes) == []
    skewed = [perf_pod("topology-spreading", i, nodes[0].name if i < 6 else nodes[1].name) for i in range(7)]
    assert violations(skewed, nodes) == [
        "ns: topology spread on topology.kubernetes.io/zone (maxSkew 5) skew 6: moon-1: 6, moon-2: 1, moon-3: 0"
    ]
    unlabelled = [dataclasses.replace(p, labels={}) for p in skewed]  # the selector matches none of them
    assert violations(unlabelled, nodes) == []


def test_round_robin_keeps_anti_affinity_with_the_pods_already_bound() -> None:
    nodes = [offer_from_dict(perf_node_body(i, ())) for i in range(4)]
    namespaces = ("ns", "init")
    init = [perf_pod("pod-anti-affinity", 0, nodes[0].name, "init", namespaces=namespaces)]
    pending = [perf_pod("pod-anti-affinity", i, None, namespaces=namespaces) for i in range(3)]
    plan = round_robin(pending, nodes, init)
    assert [n for _, n in plan] == [nodes[1].name, nodes[2].name, nodes[3].name]
    assert round_robin([*pending, perf_pod("pod-anti-affinity", 9, None, namespaces=namespaces)], nodes, init)[3:] == []
    placed = [dataclasses.replace(p, node_name=n) for p, n in plan]
    assert violations([*init, *placed], nodes) == []


def test_an_existing_pods_anti_affinity_keeps_a_matching_pod_away() -> None:
    nodes = [offer_from_dict(perf_node_body(i, ())) for i in range(2)]
    guard = perf_pod("pod-anti-affinity", 0, nodes[0].name, namespaces=("ns",))
    plain_green = dataclasses.replace(perf_pod("default", 1, None), labels={"color": "green"})
    assert [n for _, n in round_robin([plain_green], nodes, [guard])] == [nodes[1].name]


def test_models_and_api_json_give_the_same_constraints() -> None:
    sanitize: Callable[[object], Any] = ApiClient().sanitize_for_serialization
    for template in ("pod-anti-affinity", "node-affinity", "topology-spreading"):
        body = perf_pod_body(template, 0, "ns", "s", namespaces=("ns",))
        model = V1Pod.model_validate(body)
        assert needs_of(model) == needs_from_dict(sanitize(model)) == needs_from_dict(body)


# --- raw-limit-events ------------------------------------------------------------------------------------------


def test_raw_limit_events_posts_kube_schedulers_scheduled_event() -> None:
    pod_json = {"metadata": {"namespace": "ns", "name": "p", "uid": "u-1", "resourceVersion": "42"}}
    now_ns = 1_764_158_400_123_456_789  # 2025-11-26T12:00:00.123456789Z
    event = json.loads(scheduled_event_body(pod_json, "n1", "sched", "sched-host", now_ns))
    assert event == {
        "apiVersion": "events.k8s.io/v1",
        "kind": "Event",
        "metadata": {"name": f"p.{now_ns:x}", "namespace": "ns"},
        "eventTime": "2025-11-26T12:00:00.123456Z",
        "reportingController": "sched",
        "reportingInstance": "sched-host",
        "action": "Binding",
        "reason": "Scheduled",
        "regarding": {"kind": "Pod", "namespace": "ns", "name": "p", "uid": "u-1", "apiVersion": "v1",
                      "resourceVersion": "42"},
        "note": "Successfully assigned ns/p to n1",
        "type": "Normal",
    }  # fmt: skip
    assert events_path("ns") == "/apis/events.k8s.io/v1/namespaces/ns/events"


def test_raw_limit_events_is_an_anchor_with_its_own_flag() -> None:
    contender = CONTENDERS["raw-limit-events"]
    command = contender.command("s", "/k", Path("/tmp"), Path("/bin"))
    assert command[-1] == "--events" and "raw_limit.py" in command[1]
    assert "--events" not in CONTENDERS["raw-limit"].command("s", "/k", Path("/tmp"), Path("/bin"))
    summary = summarise("batch", {"raw-limit-events": [{"sched_pods_per_s": 100.0}], "x": [{"sched_pods_per_s": 50.0}]})
    assert summary["x"]["ratio_raw-limit-events"] == 0.5


def test_the_no_scores_contender_is_opt_in_and_its_config_loads() -> None:
    assert "ours-no-scores" not in bench.parse_args([]).contender_list
    assert "ours-no-scores" in bench.parse_args(["--contenders", "ours-no-scores"]).contender_list
    command = CONTENDERS["ours-no-scores"].command("s", "/k", Path("/tmp"), Path("/bin"))
    (profile,) = load(command[command.index("--config") + 1], "s")
    assert profile.filters and not profile.scores and not profile.preemption
