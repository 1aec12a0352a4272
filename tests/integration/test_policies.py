"""Policies end to end: the daemon with a policy file (or its defaults) on the real control plane."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from tests.integration.conftest import Env, wait_for

ZONE = "topology.kubernetes.io/zone"
HOSTNAME = "kubernetes.io/hostname"
FAST = ("--interval", "0.3")


def policy_file(tmp_path: Path, document: dict[str, Any]) -> str:
    path = tmp_path / "policy.yaml"
    path.write_text(yaml.safe_dump(document))
    return str(path)


def bound(env: Env, count: int) -> dict[str, str | None] | None:
    """The placements once `count` pods are bound, else None (for wait_for)."""
    placements = env.placements()
    return placements if sum(1 for n in placements.values() if n) >= count else None


def test_most_allocated_fills_one_node_before_the_next(env: Env, tmp_path: Path) -> None:
    config = policy_file(tmp_path, {"schedulerName": env.scheduler_name, "scores": [{"name": "MostAllocated"}]})
    nodes = [env.node(f"n{i}", cpu="2", memory="4Gi") for i in range(3)]
    for i in range(6):
        env.pod(f"p{i}", cpu="500m", memory="256Mi")
    with env.scheduler("--config", config, *FAST) as scheduler:
        placements = wait_for(lambda: bound(env, 6), what="6 pods bound")
    assert scheduler.exit_code == 0
    # Ties go to the lowest name; then the fuller node wins until it is full (4 x 500m = 2 cpu).
    assert Counter(placements.values()) == {nodes[0]: 4, nodes[1]: 2}


def test_topology_spread_keeps_zones_within_max_skew(env: Env, tmp_path: Path) -> None:
    """MostAllocated alone would put all 60 pods on one node; the DoNotSchedule constraint must not let it."""
    config = policy_file(tmp_path, {"schedulerName": env.scheduler_name, "scores": [{"name": "MostAllocated"}]})
    zone_of = {env.node(f"n{i}", cpu="8", labels={ZONE: f"zone-{i % 3}"}): f"zone-{i % 3}" for i in range(6)}
    constraint = {
        "maxSkew": 1,
        "topologyKey": ZONE,
        "whenUnsatisfiable": "DoNotSchedule",
        "labelSelector": {"matchLabels": {"app": "spread"}},
    }
    with env.scheduler("--config", config, *FAST):
        # Created while the daemon runs, so counts must hold both within a cycle and across cycles.
        for i in range(60):
            env.pod(f"p{i:02}", cpu="100m", labels={"app": "spread"}, topologySpreadConstraints=[constraint])
        placements = wait_for(lambda: bound(env, 60), timeout=60, what="60 pods bound")
    per_zone = Counter(zone_of[n] for n in placements.values() if n)
    assert len(per_zone) == 3
    assert max(per_zone.values()) - min(per_zone.values()) <= 1, per_zone


def test_hostname_anti_affinity_places_replicas_on_distinct_nodes(env: Env) -> None:
    """With the default profile: InterPodAffinity is one of the default filters."""
    nodes = [env.node(f"n{i}") for i in range(3)]
    anti_affinity = {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": {"app": "replica"}}, "topologyKey": HOSTNAME}
            ]
        }
    }
    for i in range(4):
        env.pod(f"r{i}", labels={"app": "replica"}, affinity=anti_affinity)
    with env.scheduler(*FAST):
        placements = wait_for(lambda: bound(env, 3), what="3 replicas bound")
        pending = [name for name, node in placements.items() if node is None]
        assert len(pending) == 1
        events = wait_for(
            lambda: [e for e in env.events("FailedScheduling") if e.involved_object.name == pending[0]],
            what=f"a FailedScheduling event for {pending[0]}",
        )
    assert sorted(n for n in placements.values() if n) == sorted(nodes)
    assert events[0].message == (
        "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules. "
        "preemption: 0/3 nodes are available: 3 No preemption victims found for incoming pod."
    )
    assert env.node_of(pending[0]) is None


def test_two_profiles_in_one_file_each_schedule_only_their_own_pods(env: Env, tmp_path: Path) -> None:
    packing, spreading = env.scheduler_name, f"{env.scheduler_name}-spread"
    config = policy_file(
        tmp_path,
        {
            "profiles": [
                {"schedulerName": packing, "scores": [{"name": "MostAllocated"}]},
                {"schedulerName": spreading, "scores": [{"name": "LeastAllocated"}]},
            ]
        },
    )
    first, second = env.node("n0", cpu="4"), env.node("n1", cpu="4")
    env.pod("stranger", scheduler=f"{env.scheduler_name}-nobody")
    with env.scheduler("--config", config, *FAST):
        for i in range(3):
            env.pod(f"pack{i}", cpu="500m")
        wait_for(lambda: bound(env, 3), what="the packing profile's pods bound")
        for i in range(2):
            env.pod(f"spread{i}", cpu="500m", scheduler=spreading)
        placements = wait_for(lambda: bound(env, 5), what="the spreading profile's pods bound")
    assert placements == {
        "pack0": first,
        "pack1": first,
        "pack2": first,
        "spread0": second,
        "spread1": second,
        "stranger": None,
    }
    assert not [e for e in env.events() if e.involved_object.name == "stranger"]
