"""The policy configuration: YAML → validated profiles. Every mistake is a ConfigError with one line.

profiles:                      # optional; without it the whole file is one profile
  - schedulerName: my-scheduler
    filters: [NodeUnschedulable, NodeReady, TaintToleration, NodeAffinity, NodeResourcesFit, NodePorts]
    scores:
      - {name: LeastAllocated, weight: 1}
      - {name: SelectorSpread, weight: 1}
    preemption: true           # kube's DefaultPreemption: evict lower-priority pods for a pod that fits nowhere
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import yaml

from policies.balanced_allocation import NodeResourcesBalancedAllocation
from policies.framework import FilterPlugin, Profile, ScorePlugin
from policies.inter_pod_affinity import InterPodAffinity
from policies.node_affinity import NodeAffinity
from policies.node_ports import NodePorts
from policies.node_ready import NodeReady
from policies.node_resources_fit import LeastAllocated, MostAllocated, NodeResourcesFit
from policies.node_unschedulable import NodeUnschedulable
from policies.selector_spread import SelectorSpread
from policies.taint_toleration import TaintToleration
from policies.topology_spread import PodTopologySpread

FILTERS: Mapping[str, Callable[[], FilterPlugin]] = {
    p.name: p
    for p in (
        NodeUnschedulable,
        NodeReady,
        TaintToleration,
        NodeAffinity,
        NodeResourcesFit,
        NodePorts,
        PodTopologySpread,
        InterPodAffinity,
    )
}
SCORES: Mapping[str, Callable[[], ScorePlugin]] = {
    p.name: p
    for p in (
        LeastAllocated,
        MostAllocated,
        SelectorSpread,
        TaintToleration,
        NodeAffinity,
        NodeResourcesBalancedAllocation,
        PodTopologySpread,
    )
}
# kube-scheduler's default weights where it has the plugin (TaintToleration 3, NodeAffinity 2,
# PodTopologySpread 2, Fit 1).
DEFAULT_SCORES = (
    ("LeastAllocated", 1),
    ("SelectorSpread", 1),
    ("TaintToleration", 3),
    ("NodeAffinity", 2),
    ("PodTopologySpread", 2),
)


class ConfigError(ValueError):
    """A configuration problem, worded for a one-line error message."""


def default_profile(scheduler_name: str) -> Profile:
    return _profile({"schedulerName": scheduler_name}, scheduler_name, "defaults")


def load(path: str, default_scheduler_name: str) -> tuple[Profile, ...]:
    try:
        with open(path, encoding="utf-8") as f:
            document = yaml.safe_load(f)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from e
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: invalid YAML{where}: {getattr(e, 'problem', e)}") from e
    return parse(document, default_scheduler_name, path)


def parse(document: Any, default_scheduler_name: str, source: str = "config") -> tuple[Profile, ...]:
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    if "profiles" not in document:
        return (_profile(document, default_scheduler_name, source),)
    entries = document["profiles"]
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{source}: profiles must be a non-empty list")
    profiles = tuple(_profile(e, default_scheduler_name, f"{source}: profiles[{i}]") for i, e in enumerate(entries))
    names = [p.scheduler_name for p in profiles]
    if len(set(names)) != len(names):
        raise ConfigError(f"{source}: schedulerName must be unique across profiles, got {names}")
    return profiles


def _profile(entry: Any, default_scheduler_name: str, where: str) -> Profile:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected a mapping")
    unknown = set(entry) - {"schedulerName", "filters", "scores", "preemption"}
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {sorted(unknown)}; expected schedulerName, filters, scores, preemption"
        )
    name = entry.get("schedulerName", default_scheduler_name)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: schedulerName must be a non-empty string")
    filter_names = entry.get("filters", list(FILTERS))
    if not isinstance(filter_names, list) or not all(isinstance(f, str) for f in filter_names):
        raise ConfigError(f"{where}: filters must be a list of names")
    filters = tuple(_lookup(FILTERS, f, "filter", where)() for f in filter_names)
    raw_scores = entry.get("scores", [{"name": n, "weight": w} for n, w in DEFAULT_SCORES])
    if not isinstance(raw_scores, list):
        raise ConfigError(f"{where}: scores must be a list of {{name, weight}}")
    scores = tuple(_score(s, where) for s in raw_scores)
    for kind, names in (("filter", filter_names), ("score", [plugin.name for plugin, _ in scores])):
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ConfigError(f"{where}: {kind} policy listed more than once: {', '.join(repeated)}")
    preemption = entry.get("preemption", True)
    if not isinstance(preemption, bool):
        raise ConfigError(f"{where}: preemption must be true or false, got {preemption!r}")
    return Profile(name, filters, scores, preemption)


def _score(entry: Any, where: str) -> tuple[ScorePlugin, int]:
    if isinstance(entry, str):
        entry = {"name": entry}
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise ConfigError(f"{where}: each score needs a name, e.g. {{name: LeastAllocated, weight: 1}}")
    unknown = set(entry) - {"name", "weight"}
    if unknown:
        raise ConfigError(f"{where}: score {entry['name']}: unknown key(s) {sorted(unknown)}; expected name, weight")
    weight = entry.get("weight", 1)
    if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
        raise ConfigError(f"{where}: score {entry['name']}: weight must be a whole number >= 0, got {weight!r}")
    return _lookup(SCORES, entry["name"], "score", where)(), weight


def _lookup(registry: Mapping[str, Callable[[], Any]], name: str, kind: str, where: str) -> Callable[[], Any]:
    if name not in registry:
        raise ConfigError(f"{where}: unknown {kind} policy {name!r}; known: {', '.join(sorted(registry))}")
    return registry[name]
