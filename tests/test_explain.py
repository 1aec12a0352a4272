"""What `explain` prints, from a decision made on builder nodes (reading the cluster is tested in
tests/integration/test_explain_bind.py)."""

from __future__ import annotations

from kubernetes.client import V1Node, V1Pod

from explain import _report, _table
from kubeapi import PodRef
from policies.algorithm import schedule
from policies.config import parse
from tests.builders import node, node_info, pod, taint

PROFILE = parse({"scores": [{"name": "LeastAllocated", "weight": 1}, {"name": "TaintToleration", "weight": 3}]}, "x")[0]


def explained(the_pod: V1Pod, nodes: list[V1Node]) -> str:
    infos = [node_info(n) for n in nodes]
    decision = schedule(PROFILE, the_pod, infos, explain=True)
    return _table(_report(PodRef.of(the_pod), PROFILE, infos, decision))


def test_a_row_per_node_best_first_failures_last_with_every_reason() -> None:
    text = explained(
        pod("ex", cpu="1"),
        [
            node("small", cpu="2"),
            node("big", cpu="8"),
            node("cordoned", unschedulable=True, cpu="500m"),
            node("spot", taints=[taint("spot", "PreferNoSchedule")]),
        ],
    )
    # LeastAllocated in kube's integer arithmetic, with the pod's 1 cpu and the 200Mi scoring default on 8Gi,
    # e.g. big: cpu (8000 - 1000) * 100 // 8000 = 87, memory (8192 - 200) * 100 // 8192 = 97, (87 + 97) // 2 = 92;
    # the PreferNoSchedule taint costs spot 3 x 100.
    assert text.splitlines() == [
        "pod default/ex, profile x",
        "NODE      FILTERS                                                                             "
        "LeastAllocated(x1)  TaintToleration(x3)  TOTAL",
        "big       passed                                                                              "
        "92.0                100.0                392.0",
        "small     passed                                                                              "
        "73.0                100.0                373.0",
        "spot      passed                                                                              "
        "86.0                0.0                  86.0",
        "cordoned  NodeUnschedulable: node(s) were unschedulable | NodeResourcesFit: Insufficient cpu  "
        "-                   -                    -",
        "=> default/ex would be bound to big",
    ]


def test_a_pod_that_fits_nowhere_ends_with_the_failed_scheduling_message() -> None:
    text = explained(pod("huge", cpu="64"), [node("a"), node("b", taints=[taint("gpu", value="true")])])
    assert text.splitlines()[-1] == (
        "=> default/huge cannot be scheduled: FailedScheduling: 0/2 nodes are available: "
        "1 node(s) had untolerated taint {gpu: true}, 2 Insufficient cpu."
    )
    assert all(line.endswith("-") for line in text.splitlines()[2:-1]), "no scores for infeasible nodes"
