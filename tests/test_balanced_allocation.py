"""NodeResourcesBalancedAllocation: kube v1.37's formula, 50 + (50 + balance_with_pod - balance_without) / 2,
on a 4-cpu / 16Gi node unless a case says otherwise."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from kubernetes.client import V1Pod

from policies.balanced_allocation import NodeResourcesBalancedAllocation, balance
from policies.framework import NodeInfo
from tests.builders import node_with_pods, pod, scores


def node(name: str, *, memory: str = "16Gi", pods: Sequence[V1Pod] = ()) -> NodeInfo:
    return node_with_pods(name, memory=memory, pods=pods)


def used(cpu: str = "0", memory: str = "0") -> NodeInfo:
    """Node `a` with one pod already taking `cpu` and `memory`."""
    return node("a", pods=[pod("old", cpu=cpu, memory=memory, node_name="a")])


@pytest.mark.parametrize(
    "incoming, target, expected",
    [
        pytest.param(pod(cpu="1", memory="4Gi"), node("a"), 75, id="a pod that keeps an empty node balanced scores 75"),
        pytest.param(
            pod(cpu="1", memory="4Gi"), used(cpu="2"), 75, id="a pod that keeps the imbalance as it is scores 75"
        ),
        pytest.param(pod(cpu="1"), used(memory="8Gi"), 81, id="a pod that evens out cpu and memory scores above 75"),
        pytest.param(pod(cpu="1"), used(cpu="3"), 69, id="a pod that worsens the imbalance scores below 75"),
        pytest.param(pod(cpu="1"), node("a"), 68, id="the real requests count: no 200Mi memory default for scoring"),
        pytest.param(
            pod(cpu="8", memory="16Gi"), node("a"), 75, id="fractions are capped at 1: twice the cpu is just full"
        ),
        pytest.param(pod(cpu="1"), node("a", memory="0"), 75, id="a resource the node has none of is left out"),
        pytest.param(pod(), used(cpu="3"), 0, id="a pod requesting neither cpu nor memory is not scored"),
    ],
)
def test_score(incoming: V1Pod, target: NodeInfo, expected: int) -> None:
    assert scores(NodeResourcesBalancedAllocation(), incoming, [target]) == {"a": expected}


def test_the_node_the_pod_balances_best_scores_highest() -> None:
    memory_heavy = node("a", pods=[pod("old", memory="8Gi", node_name="a")])
    cpu_heavy = node("b", pods=[pod("old", cpu="2", node_name="b")])
    result = scores(NodeResourcesBalancedAllocation(), pod(cpu="2"), [memory_heavy, cpu_heavy])
    assert result["a"] > 75 > result["b"]


@pytest.mark.parametrize(
    "fractions, expected",
    [
        pytest.param([], 100, id="no resources: perfectly balanced"),
        pytest.param([0.3], 100, id="one resource: perfectly balanced"),
        pytest.param([0.5, 0.5], 100, id="equal fractions: perfectly balanced"),
        pytest.param([1.0, 0.0], 50, id="one full, one empty: the worst two resources can be"),
        pytest.param([0.1, 0.2, 0.6], 78, id="three resources: the population standard deviation"),
    ],
)
def test_balance(fractions: list[float], expected: int) -> None:
    assert balance(fractions) == expected
