"""Property tests: thousands of random but API-valid pods and clusters through the whole default profile.

Whatever the objects look like — odd quantities, wildcard tolerations, selectors that contradict each other,
nodes without status, allocatable or conditions — scheduling must answer, never raise, and explain every
node it turns down.
"""

from __future__ import annotations

from typing import Any
from unittest.mock import patch

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes.client import V1Node, V1Pod

from policies import algorithm
from policies.algorithm import FilterCache, schedule
from policies.config import FILTERS, SCORES, default_profile
from policies.framework import MAX_SCORE, Code, NodeInfo, Profile
from tests.builders import held, made

Json = dict[str, Any]

NODE_NAMES = [f"n{i}" for i in range(6)]
QUANTITIES = ["0", "1", "2", "1e3", "0.5", "100m", "250m", "1Ki", "512Ki", "64Mi", "1.5Gi", "1e-3", "7"]
CAPACITIES = [*QUANTITIES, "4", "8Gi", "110", "1E", "1Ei", "9999999999999999", "0"]
WHOLE = ["0", "1", "2", "1e3"]  # extended resources must be whole numbers
LABEL_KEYS = ["zone", "gpu", "cores", "disk", "topology.kubernetes.io/zone", "kubernetes.io/hostname", "app"]
LABEL_VALUES = ["a", "b", "", "1", "8", "16", "ssd", "n0", "n1"]
INTEGERS = ["0", "4", "-1", "10", "9223372036854775807"]
TAINT_KEYS = ["gpu", "dedicated", "spot", "node.kubernetes.io/unschedulable", "node.kubernetes.io/not-ready"]
EFFECTS = ["NoSchedule", "NoExecute", "PreferNoSchedule"]

label_keys = st.sampled_from(LABEL_KEYS)
label_values = st.sampled_from(LABEL_VALUES)
labels = st.dictionaries(label_keys, label_values, max_size=4)
effects = st.sampled_from(EFFECTS)


def named(items: list[Json], prefix: str) -> list[Json]:
    return [{**item, "name": f"{prefix}{i}"} for i, item in enumerate(items)]


# Strategies are built once, at import: building them inside a draw costs a validation each time.
requests = st.fixed_dictionaries(
    {},
    optional={
        "cpu": st.sampled_from(QUANTITIES),
        "memory": st.sampled_from(QUANTITIES),
        "ephemeral-storage": st.sampled_from(QUANTITIES),
        "nvidia.com/gpu": st.sampled_from(WHOLE),
    },
)
host_port = st.fixed_dictionaries(
    {"containerPort": st.just(8080), "hostPort": st.sampled_from([0, 80, 443, 8080])},
    optional={"protocol": st.sampled_from(["TCP", "UDP", "SCTP"]), "hostIP": st.sampled_from(["0.0.0.0", "10.0.0.1"])},
)
container = st.fixed_dictionaries(
    {"name": st.just("c"), "image": st.just("pause")},
    optional={"resources": st.fixed_dictionaries({"requests": requests}), "ports": st.lists(host_port, max_size=2)},
)
init_container = st.fixed_dictionaries(
    {"name": st.just("i"), "image": st.just("pause")},
    optional={
        "resources": st.fixed_dictionaries({"requests": requests}),
        "ports": st.lists(host_port, max_size=1),
        "restartPolicy": st.just("Always"),  # a sidecar
    },
)
taint_keys = st.sampled_from(TAINT_KEYS)
toleration = st.one_of(
    st.fixed_dictionaries({"operator": st.just("Exists")}, optional={"effect": effects}),  # wildcard
    st.fixed_dictionaries({"key": taint_keys, "operator": st.just("Exists")}, optional={"effect": effects}),
    st.fixed_dictionaries(
        {"key": taint_keys},
        optional={"operator": st.just("Equal"), "value": st.sampled_from(["true", "", "a"]), "effect": effects},
    ),
)
requirement = st.one_of(
    st.fixed_dictionaries(
        {
            "key": label_keys,
            "operator": st.sampled_from(["In", "NotIn"]),
            "values": st.lists(label_values, min_size=1, max_size=3),
        }
    ),
    st.fixed_dictionaries({"key": label_keys, "operator": st.sampled_from(["Exists", "DoesNotExist"])}),
    st.fixed_dictionaries(
        {
            "key": label_keys,
            "operator": st.sampled_from(["Gt", "Lt"]),
            "values": st.lists(st.sampled_from(INTEGERS), min_size=1, max_size=1),
        }
    ),
)
field_requirement = st.fixed_dictionaries(
    {
        "key": st.just("metadata.name"),
        "operator": st.sampled_from(["In", "NotIn"]),
        "values": st.lists(st.sampled_from(NODE_NAMES), min_size=1, max_size=1),
    }
)
# An empty term is valid and matches nothing.
term = st.fixed_dictionaries(
    {},
    optional={
        "matchExpressions": st.lists(requirement, max_size=3),
        "matchFields": st.lists(field_requirement, max_size=1),
    },
)
node_affinity = st.fixed_dictionaries(
    {},
    optional={
        "requiredDuringSchedulingIgnoredDuringExecution": st.fixed_dictionaries(
            {"nodeSelectorTerms": st.lists(term, min_size=1, max_size=3)}
        ),
        "preferredDuringSchedulingIgnoredDuringExecution": st.lists(
            st.fixed_dictionaries({"weight": st.integers(1, 100), "preference": term}), max_size=3
        ),
    },
)
topology_keys = st.sampled_from(["kubernetes.io/hostname", "topology.kubernetes.io/zone", "zone"])
selector: st.SearchStrategy[Json] = st.just({}) | st.fixed_dictionaries(
    {"matchLabels": st.fixed_dictionaries({"app": st.sampled_from(["web", "db"])})}
)
pod_affinity_terms = st.lists(
    st.fixed_dictionaries({"labelSelector": selector, "topologyKey": topology_keys}), min_size=1, max_size=2
)
affinity = st.fixed_dictionaries(
    {},
    optional={
        "nodeAffinity": node_affinity,
        "podAffinity": st.fixed_dictionaries({"requiredDuringSchedulingIgnoredDuringExecution": pod_affinity_terms}),
        "podAntiAffinity": st.fixed_dictionaries(
            {"requiredDuringSchedulingIgnoredDuringExecution": pod_affinity_terms}
        ),
    },
)
spread_constraint = st.fixed_dictionaries(
    {
        "maxSkew": st.integers(1, 3),
        "topologyKey": topology_keys,
        "whenUnsatisfiable": st.sampled_from(["DoNotSchedule", "ScheduleAnyway"]),
        "labelSelector": selector,
    },
    optional={"minDomains": st.integers(1, 3)},
)
pod_spec = st.fixed_dictionaries(
    {"containers": st.lists(container, min_size=1, max_size=3).map(lambda cs: named(cs, "c"))},
    optional={
        "initContainers": st.lists(init_container, min_size=1, max_size=3).map(lambda cs: named(cs, "i")),
        "overhead": st.dictionaries(st.sampled_from(["cpu", "memory"]), st.sampled_from(QUANTITIES), min_size=1),
        "tolerations": st.lists(toleration, max_size=3),  # [] included
        "nodeSelector": labels,
        "affinity": affinity,
        "topologySpreadConstraints": st.lists(spread_constraint, min_size=1, max_size=2),
    },
)
small_requests = st.fixed_dictionaries(
    {}, optional={"cpu": st.sampled_from(["0", "100m", "0.5", "1e-3"]), "memory": st.sampled_from(["0", "1Ki", "64Mi"])}
)
friendly_container = st.fixed_dictionaries(
    {"name": st.just("c"), "image": st.just("pause")},
    optional={"resources": st.fixed_dictionaries({"requests": small_requests})},
)
soft_spread = st.fixed_dictionaries(
    {
        "maxSkew": st.integers(1, 3),
        "topologyKey": topology_keys,
        "whenUnsatisfiable": st.just("ScheduleAnyway"),
        "labelSelector": selector,
    }
)
friendly_pod_spec = st.fixed_dictionaries(
    {"containers": st.lists(friendly_container, min_size=1, max_size=2).map(lambda cs: named(cs, "c"))},
    optional={
        "tolerations": st.lists(toleration, max_size=2),
        "affinity": st.fixed_dictionaries(
            {
                "nodeAffinity": st.fixed_dictionaries(
                    {
                        "preferredDuringSchedulingIgnoredDuringExecution": st.lists(
                            st.fixed_dictionaries({"weight": st.integers(1, 100), "preference": term}), max_size=3
                        )
                    }
                )
            }
        ),
        "topologySpreadConstraints": st.lists(soft_spread, min_size=1, max_size=2),
    },
)
owner_reference = st.fixed_dictionaries(
    {
        "apiVersion": st.just("apps/v1"),
        "kind": st.just("ReplicaSet"),
        "name": st.just("rs"),
        "uid": st.sampled_from(["rs-1", "rs-2"]),
        "controller": st.booleans(),
    }
)
pod_metadata = st.fixed_dictionaries(
    {"namespace": st.sampled_from(["default", "prod"])},
    optional={
        "labels": st.dictionaries(st.sampled_from(["app", "tier"]), st.sampled_from(["web", "db"]), min_size=1),
        "ownerReferences": st.lists(owner_reference, min_size=1, max_size=1),
    },
)


@st.composite
def pod_json(draw: st.DrawFn, name: str, node_name: str | None = None) -> Json:
    spec = draw(friendly_pod_spec | pod_spec)
    if node_name is not None:
        spec["nodeName"] = node_name
    metadata = {**draw(pod_metadata), "name": name, "uid": f"uid-{name}"}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec}


ample_resources = st.fixed_dictionaries(
    {
        "cpu": st.sampled_from(["4", "1e3", "1E", "64"]),
        "memory": st.sampled_from(["8Gi", "1Ei", "1e12"]),
        "pods": st.sampled_from(["110", "1e3"]),
    },
    optional={"nvidia.com/gpu": st.sampled_from(WHOLE), "ephemeral-storage": st.sampled_from(["100Gi", "0"])},
)
odd_resources = st.dictionaries(
    st.sampled_from(["cpu", "memory", "pods", "ephemeral-storage", "nvidia.com/gpu"]),
    st.sampled_from(CAPACITIES),
    max_size=5,
)
conditions = st.lists(
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["Ready", "Ready", "MemoryPressure"]),
            "status": st.sampled_from(["True", "True", "False", "Unknown"]),
        }
    ),
    max_size=2,
    unique_by=lambda c: c["type"],
)
status_shapes = st.sampled_from(
    ["ready"] * 4 + ["both", "capacity", "allocatable", "empty allocatable", "empty", "none"]
)
node_spec = st.fixed_dictionaries(
    {},
    optional={
        "taints": st.lists(
            st.fixed_dictionaries(
                {"key": taint_keys, "effect": st.sampled_from(EFFECTS)},
                optional={"value": st.sampled_from(["true", "a"])},
            ),
            max_size=3,
            unique_by=lambda t: (t["key"], t["effect"]),
        ),
        "unschedulable": st.booleans(),
    },
)


@st.composite
def node_json(draw: st.DrawFn, name: str) -> Json:
    allocatable = draw(ample_resources | odd_resources)
    shapes: dict[str, Json | None] = {
        "ready": {
            "capacity": allocatable,
            "allocatable": allocatable,
            "conditions": [{"type": "Ready", "status": "True"}],
        },
        "both": {"capacity": allocatable, "allocatable": allocatable},
        "capacity": {"capacity": allocatable},
        "allocatable": {"allocatable": allocatable},
        "empty allocatable": {"capacity": allocatable, "allocatable": {}},
        "empty": {},
        "none": None,
    }
    status = shapes[draw(status_shapes)]
    if status is not None and "conditions" not in status and draw(st.booleans()):
        status["conditions"] = draw(conditions)
    metadata: Json = {"name": name}
    node_labels = draw(labels)
    if node_labels:
        metadata["labels"] = {**node_labels, "kubernetes.io/hostname": name}
    out: Json = {"apiVersion": "v1", "kind": "Node", "metadata": metadata, "spec": draw(node_spec)}
    if status is not None:
        out["status"] = status
    return out


node_counts = st.integers(1, len(NODE_NAMES))
running_counts = st.integers(0, 6)


@st.composite
def cluster(draw: st.DrawFn) -> tuple[V1Pod, list[NodeInfo], int, int]:
    names = NODE_NAMES[: draw(node_counts)]
    nodes = {name: made(V1Node.from_dict(draw(node_json(name)))) for name in names}
    running: dict[str, list[V1Pod]] = {name: [] for name in names}
    for i in range(draw(running_counts)):
        where = draw(st.sampled_from(names))
        running[where].append(made(V1Pod.from_dict(draw(pod_json(f"running-{i}", where)))))
    infos = [NodeInfo.of(nodes[name], running[name]) for name in names]
    the_pod = made(V1Pod.from_dict(draw(pod_json("new"))))
    find = draw(st.integers(1, len(names)))
    start = draw(st.integers(0, len(names) - 1))
    return the_pod, infos, find, start


# Every registered policy at once, MostAllocated and LeastAllocated side by side.
ALL_POLICIES = Profile("all", tuple(f() for f in FILTERS.values()), tuple((s(), 1) for s in SCORES.values()))


def check(profile: Profile, the_pod: V1Pod, nodes: list[NodeInfo], find: int, start: int) -> None:
    decision = schedule(profile, the_pod, nodes, find=find, start=start, explain=True)
    # The daemon's path (node-only verdicts cached, a window of nodes judged at once, the nodes' rows read from the
    # cache's NodeTable) must choose the same node after examining as many nodes; so must it on a plain list, and
    # with windows smaller than the cluster (their edges, and the wrap past the last node).
    listed = held(nodes)
    fast = schedule(profile, the_pod, listed, find=find, start=start, cache=FilterCache())
    plain = schedule(profile, the_pod, nodes, find=find, start=start, cache=FilterCache())
    with patch.object(algorithm, "WINDOW", 2):
        narrow = schedule(profile, the_pod, listed, find=find, start=start, cache=FilterCache())
    for answer in (decision, fast, plain, narrow):
        if answer.status.code is Code.ERROR:  # a plugin raised: fail with its traceback
            raise AssertionError(answer.message) from answer.status.error
        assert (answer.node, answer.message, answer.examined) == (decision.node, decision.message, decision.examined)
    for name, verdict in decision.verdicts.items():
        for plugin, status in verdict.items():
            assert status.ok or status.reasons, f"{plugin} rejected {name} without a reason"
    if decision.node is None:
        assert len(decision.verdicts) == len(nodes), "a pod that fits nowhere was checked against every node"
        assert decision.message.startswith(f"0/{len(nodes)} nodes are available: "), decision.message
        assert decision.message.endswith(".")
        assert not decision.totals
        return
    assert all(s.ok for s in decision.verdicts[decision.node].values())
    assert decision.message == ""
    best = max(decision.totals.values())
    assert decision.totals[decision.node] == best
    assert decision.node == min(n for n, t in decision.totals.items() if t == best)
    ceiling = MAX_SCORE * sum(w for _, w in profile.scores)
    assert all(0 <= t <= ceiling for t in decision.totals.values())
    for per_plugin in decision.scores.values():
        assert all(0 <= s <= MAX_SCORE for s in per_plugin.values())


SETTINGS = settings(
    max_examples=800,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@SETTINGS
@given(cluster())
def test_the_default_profile_answers_for_any_pod_and_cluster(case: tuple[V1Pod, list[NodeInfo], int, int]) -> None:
    the_pod, nodes, find, start = case
    check(default_profile("x"), the_pod, nodes, len(nodes), 0)
    check(default_profile("x"), the_pod, nodes, find, start)


@settings(SETTINGS, max_examples=300)
@given(cluster())
def test_every_policy_answers_for_any_pod_and_cluster(case: tuple[V1Pod, list[NodeInfo], int, int]) -> None:
    check(ALL_POLICIES, *case)


def test_no_nodes_at_all() -> None:
    decision = schedule(default_profile("x"), made(V1Pod.from_dict({"spec": {"containers": []}})), [])
    assert decision.node is None
    assert decision.message == "no nodes available to schedule pods"
