"""The framework's types: normalisation, plugin capabilities resolved per profile, typed CycleState keys,
NodeInfo's aggregates."""

from collections import Counter

import pytest
from kubernetes.client import V1Pod, V1PodStatus

from policies.config import default_profile
from policies.framework import (
    CycleState,
    Key,
    Normalize,
    PodInfo,
    PreFilterSkip,
    normalise,
)
from tests.builders import node, node_info, pod, pod_term


@pytest.mark.parametrize(
    "scores, mode, expected",
    [
        pytest.param([10, 55.5, 0], Normalize.NONE, [10, 55.5, 0], id="NONE keeps scores already in range"),
        pytest.param([1, 2, 4], Normalize.MAX, [25, 50, 100], id="MAX scales the best to 100"),
        pytest.param([0, 0], Normalize.MAX, [0, 0], id="MAX with nothing to prefer leaves zeros"),
        pytest.param([0, 1, 2], Normalize.REVERSE, [100, 50, 0], id="REVERSE makes the highest raw score 0"),
        pytest.param([0, 0, 0], Normalize.REVERSE, [100, 100, 100], id="REVERSE with all zeros gives 100 each"),
        pytest.param([3], Normalize.MAX, [100], id="a single node gets the full score"),
        pytest.param([], Normalize.MAX, [], id="no nodes"),
        pytest.param([], Normalize.REVERSE, [], id="no nodes, reversed"),
    ],
)
def test_normalise(scores: list[float], mode: Normalize, expected: list[float]) -> None:
    assert normalise(scores, mode) == pytest.approx(expected)


def test_capabilities_are_resolved_once_per_profile() -> None:
    profile = default_profile("x")
    assert [p.name for p in profile.node_only_filters] == [
        "NodeUnschedulable",
        "NodeReady",
        "TaintToleration",
        "NodeAffinity",
    ]
    assert [(p.name, pre is not None) for p, pre in profile.pod_filters] == [
        ("NodeResourcesFit", False),
        ("NodePorts", True),
        ("VolumeRestrictions", True),
        ("NodeVolumeLimits", True),
        ("VolumeBinding", True),
        ("VolumeZone", True),
        ("PodTopologySpread", True),
        ("InterPodAffinity", True),
    ]
    assert [p.name for p, _ in profile.prefilters] == ["VolumeRestrictions", "VolumeBinding", "VolumeZone"]
    assert [(p.name, w, uniform is not None) for p, w, uniform in profile.weighted_scores] == [
        # kube-scheduler's default profile is ours too (policies/config.py)
        ("TaintToleration", 3, True),
        ("NodeAffinity", 2, True),
        ("NodeResourcesFit", 1, False),
        ("PodTopologySpread", 2, True),
        ("InterPodAffinity", 2, True),
        ("NodeResourcesBalancedAllocation", 1, False),
        ("ImageLocality", 1, True),
    ]


def test_a_misspelt_capability_is_caught_when_the_plugin_is_made() -> None:
    class Misspelt(PreFilterSkip):
        def skip(self, pod: V1Pod, state: CycleState) -> bool:
            return True

    with pytest.raises(TypeError, match="abstract method"):
        Misspelt()  # type: ignore[abstract]


def test_cycle_state_keys_are_typed_and_distinct() -> None:
    first, second = Key[int]("same name"), Key[int]("same name")
    state = CycleState([])
    assert state.memo(first, lambda: 1) == 1
    assert state.memo(second, lambda: 2) == 2
    assert state.memo(first, lambda: 3) == 1


def test_node_info_accounts_for_its_pods() -> None:
    info = node_info(node("a"), [pod("x", cpu="1", host_ports=[]), pod("y", memory="1Gi", owner="rs")])
    assert info.name == "a"
    assert info.labels["kubernetes.io/hostname"] == "a"
    assert info.requested == Counter({"cpu": 1000, "memory": 1024**3, "pods": 2})
    assert info.nonzero_requested == Counter({"cpu": 1100, "memory": 1024**3 + 200 * 1024**2})
    assert info.workloads == Counter({"owner/rs": 1})
    assert info.allocatable["pods"] == 110


def test_a_clone_changes_independently_of_its_node() -> None:
    original = node_info(node(), [pod("a", cpu="1", owner="rs", anti_affinity=[pod_term(match={"x": "y"})])])
    before = (dict(original.pods), Counter(original.requested), Counter(original.workloads))
    clone = original.clone()
    clone.remove_pod("uid-default-a")
    clone.add_pod(PodInfo.of(pod("b", cpu="2"), "n1"))
    assert (dict(original.pods), original.requested, original.workloads) == before
    assert list(original.anti_affinity_pods) == ["uid-default-a"] and not clone.anti_affinity_pods
    assert list(clone.pods) == ["uid-default-b"] and clone.requested["cpu"] == 2000
    assert clone.facts is original.facts


def _with_status(p: V1Pod, status: dict[str, object]) -> V1Pod:
    p.status = V1PodStatus.from_dict(status)
    return p


@pytest.mark.parametrize(
    "the_pod, start_time, terminating_by_preemption",
    [
        pytest.param(pod(), None, False, id="a pod not started yet"),
        pytest.param(
            _with_status(pod(), {"startTime": "2026-01-01T00:00:10Z"}), 1767225610.0, False, id="status.startTime"
        ),
        pytest.param(
            _with_status(
                pod(deleting=True),
                {"conditions": [{"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler"}]},
            ),
            None,
            True,
            id="deleting with the condition kube's preemption sets",
        ),
        pytest.param(
            _with_status(
                pod(),
                {"conditions": [{"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler"}]},
            ),
            None,
            False,
            id="the condition without deletion is not terminating",
        ),
        pytest.param(
            _with_status(
                pod(deleting=True),
                {
                    "conditions": [
                        {"type": "DisruptionTarget", "status": "False", "reason": "PreemptionByScheduler"},
                        {"type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler"},
                    ]
                },
            ),
            None,
            False,
            id="only the first DisruptionTarget condition counts, as in kube",
        ),
    ],
)
def test_pod_info_records_what_preemption_reads(
    the_pod: V1Pod, start_time: float | None, terminating_by_preemption: bool
) -> None:
    record = PodInfo.of(the_pod)
    assert (record.start_time, record.terminating_by_preemption) == (start_time, terminating_by_preemption)
