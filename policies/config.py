"""The policy configuration: YAML → validated profiles. Every mistake is a ConfigError with one line.

profiles:                      # optional; without it the whole file is one profile
  - schedulerName: my-scheduler
    preset: default-scheduler  # optional: kube-scheduler's default plugins and weights (the default), or
                               # my-scheduler (this project's former default); filters/scores below replace its own
    filters: [NodeUnschedulable, NodeReady, TaintToleration, NodeAffinity, NodeResourcesFit, NodePorts]
    scores:
      - {name: LeastAllocated, weight: 1}
      - {name: SelectorSpread, weight: 1}
      - {name: NodeResourcesFit, weight: 1, scoringStrategy: {type: RequestedToCapacityRatio,
         resources: [{name: cpu, weight: 1}], requestedToCapacityRatio: {shape: [{utilization: 0, score: 10},
         {utilization: 100, score: 0}]}}}
    preemption: true           # kube's DefaultPreemption: evict lower-priority pods for a pod that fits nowhere
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import yaml

from policies.balanced_allocation import NodeResourcesBalancedAllocation
from policies.framework import FilterPlugin, Profile, ScorePlugin
from policies.image_locality import ImageLocality
from policies.inter_pod_affinity import InterPodAffinity
from policies.node_affinity import NodeAffinity
from policies.node_ports import NodePorts
from policies.node_ready import NodeReady
from policies.node_resources_fit import (
    LEAST_ALLOCATED,
    MOST_ALLOCATED,
    REQUESTED_TO_CAPACITY_RATIO,
    LeastAllocated,
    MostAllocated,
    NodeResourcesFit,
    ScoringStrategy,
)
from policies.node_unschedulable import NodeUnschedulable
from policies.node_volume_limits import NodeVolumeLimits
from policies.selector_spread import SelectorSpread
from policies.taint_toleration import TaintToleration
from policies.topology_spread import PodTopologySpread
from policies.volume_binding import BIND_TIMEOUT_SECONDS, VolumeBinding
from policies.volume_restrictions import VolumeRestrictions
from policies.volume_zone import VolumeZone

FILTERS: Mapping[str, Callable[[], FilterPlugin]] = {
    p.name: p
    for p in (
        NodeUnschedulable,
        NodeReady,
        TaintToleration,
        NodeAffinity,
        NodeResourcesFit,
        NodePorts,
        # kube's default order (apis/config/v1/default_plugins.go): the volume filters after the node's
        # resources and ports, before spreading and inter-pod affinity.
        VolumeRestrictions,
        NodeVolumeLimits,
        VolumeBinding,
        VolumeZone,
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
        NodeResourcesFit,
        InterPodAffinity,
        ImageLocality,
    )
}
# kube-scheduler v1.37's default score plugins and weights, in its order (apis/config/v1/default_plugins.go;
# NodeResourcesFit scores LeastAllocated on cpu and memory, weight 1 each: apis/config/v1/defaults.go).
KUBE_DEFAULT_SCORES = (
    ("TaintToleration", 3),
    ("NodeAffinity", 2),
    ("NodeResourcesFit", 1),
    ("PodTopologySpread", 2),
    ("InterPodAffinity", 2),
    ("NodeResourcesBalancedAllocation", 1),
    ("ImageLocality", 1),
)
# This project's first default: SelectorSpread for workload spreading, no pod-affinity or image scores.
MY_SCHEDULER_SCORES = (
    ("LeastAllocated", 1),
    ("SelectorSpread", 1),
    ("TaintToleration", 3),
    ("NodeAffinity", 2),
    ("PodTopologySpread", 2),
)
PRESETS: Mapping[str, tuple[tuple[str, int], ...]] = {
    "default-scheduler": KUBE_DEFAULT_SCORES,
    "my-scheduler": MY_SCHEDULER_SCORES,
}
DEFAULT_PRESET = "default-scheduler"
DEFAULT_SCORES = PRESETS[DEFAULT_PRESET]


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
    if document.get("kind") == "KubeSchedulerConfiguration":
        return _kube_configuration(document, default_scheduler_name, source)
    if "profiles" not in document:
        return (_profile(document, default_scheduler_name, source),)
    entries = document["profiles"]
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{source}: profiles must be a non-empty list")
    return _unique(
        tuple(_profile(e, default_scheduler_name, f"{source}: profiles[{i}]") for i, e in enumerate(entries)), source
    )


def _unique(profiles: tuple[Profile, ...], where: str) -> tuple[Profile, ...]:
    names = [p.scheduler_name for p in profiles]
    if len(set(names)) != len(names):
        raise ConfigError(f"{where}: schedulerName must be unique across profiles, got {names}")
    return profiles


def _profile(entry: Any, default_scheduler_name: str, where: str) -> Profile:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected a mapping")
    unknown = set(entry) - {"schedulerName", "preset", "filters", "scores", "preemption"}
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {sorted(unknown)}; expected schedulerName, preset, filters, scores, preemption"
        )
    preset = entry.get("preset", DEFAULT_PRESET)
    if preset not in PRESETS:
        raise ConfigError(f"{where}: unknown preset {preset!r}; known: {', '.join(PRESETS)}")
    name = entry.get("schedulerName", default_scheduler_name)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: schedulerName must be a non-empty string")
    filter_names = entry.get("filters", list(FILTERS))
    if not isinstance(filter_names, list) or not all(isinstance(f, str) for f in filter_names):
        raise ConfigError(f"{where}: filters must be a list of names")
    filters = tuple(_lookup(FILTERS, f, "filter", where)() for f in filter_names)
    raw_scores = entry.get("scores", [{"name": n, "weight": w} for n, w in PRESETS[preset]])
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
    allowed = {"name", "weight", "scoringStrategy"} if entry["name"] == "NodeResourcesFit" else {"name", "weight"}
    unknown = set(entry) - allowed
    if unknown:
        raise ConfigError(
            f"{where}: score {entry['name']}: unknown key(s) {sorted(unknown)}; expected {', '.join(sorted(allowed))}"
        )
    weight = entry.get("weight", 1)
    if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
        raise ConfigError(f"{where}: score {entry['name']}: weight must be a whole number >= 0, got {weight!r}")
    if "scoringStrategy" in entry:
        return NodeResourcesFit(scoring_strategy(entry["scoringStrategy"], f"{where}: score NodeResourcesFit")), weight
    return _lookup(SCORES, entry["name"], "score", where)(), weight


def _whole(value: Any, low: int, high: int, what: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{where}: {what} must be a whole number {low}..{high}, got {value!r}")
    return value


def scoring_strategy(raw: Any, where: str) -> ScoringStrategy:
    """kube's NodeResourcesFitArgs.scoringStrategy, checked as kube's validation does (resource weights 1..100;
    a shape's utilisation 0..100 strictly increasing, scores 0..10)."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: scoringStrategy must be a mapping")
    unknown = set(raw) - {"type", "resources", "requestedToCapacityRatio"}
    if unknown:
        raise ConfigError(f"{where}: scoringStrategy: unknown key(s) {sorted(unknown)}")
    kind = raw.get("type", LEAST_ALLOCATED)
    if kind not in (LEAST_ALLOCATED, MOST_ALLOCATED, REQUESTED_TO_CAPACITY_RATIO):
        raise ConfigError(
            f"{where}: scoringStrategy.type must be {LEAST_ALLOCATED}, {MOST_ALLOCATED} or "
            f"{REQUESTED_TO_CAPACITY_RATIO}, got {kind!r}"
        )
    raw_resources = raw.get("resources", [{"name": "cpu", "weight": 1}, {"name": "memory", "weight": 1}])
    if not isinstance(raw_resources, list) or not raw_resources:
        raise ConfigError(f"{where}: scoringStrategy.resources must be a non-empty list of {{name, weight}}")
    resources = []
    for r in raw_resources:
        if not isinstance(r, dict) or not isinstance(r.get("name"), str) or set(r) - {"name", "weight"}:
            raise ConfigError(f"{where}: scoringStrategy.resources: each needs a name and a weight, got {r!r}")
        resources.append((r["name"], _whole(r.get("weight", 1), 1, 100, f"weight of {r['name']}", where)))
    shape: list[tuple[int, int]] = []
    ratio = raw.get("requestedToCapacityRatio")
    if kind == REQUESTED_TO_CAPACITY_RATIO:
        points = ratio.get("shape") if isinstance(ratio, dict) else None
        if not isinstance(points, list) or not points:
            raise ConfigError(f"{where}: RequestedToCapacityRatio needs requestedToCapacityRatio.shape (points)")
        for p in points:
            if not isinstance(p, dict) or set(p) != {"utilization", "score"}:
                raise ConfigError(f"{where}: each shape point needs utilization and score, got {p!r}")
            point = (_whole(p["utilization"], 0, 100, "utilization", where), _whole(p["score"], 0, 10, "score", where))
            if shape and point[0] <= shape[-1][0]:
                raise ConfigError(f"{where}: shape utilization values must be strictly increasing")
            shape.append(point)
    elif ratio is not None:
        raise ConfigError(f"{where}: requestedToCapacityRatio is only for type {REQUESTED_TO_CAPACITY_RATIO}")
    return ScoringStrategy(kind, tuple(resources), tuple(shape))


def _lookup(registry: Mapping[str, Callable[[], Any]], name: str, kind: str, where: str) -> Callable[[], Any]:
    if name not in registry:
        raise ConfigError(f"{where}: unknown {kind} policy {name!r}; known: {', '.join(sorted(registry))}")
    return registry[name]


# --- kube-scheduler's own vocabulary: a KubeSchedulerConfiguration -------------------------------------------

KUBE_API_VERSION = "kubescheduler.config.k8s.io/v1"
# kube's plugins whose behaviour is built into this scheduler rather than a policy: enabling them is a no-op.
BUILT_IN = {"PrioritySort", "SchedulingGates", "DefaultBinder", "DefaultPreemption", "NodeName"}
# kube's other plugins, which this scheduler does not have: disabling them is a no-op, enabling them an error.
NOT_SUPPORTED = {
    "DynamicResources",
    "NodeDeclaredFeatures",
    "GangScheduling",
}
POINTS = ("multiPoint", "filter", "score", "postFilter")
PREEMPTION = "DefaultPreemption"  # the only postFilter plugin: disabling it turns preemption off


def _kube_configuration(document: dict[str, Any], default_scheduler_name: str, source: str) -> tuple[Profile, ...]:
    """A KubeSchedulerConfiguration (v1): its profiles, each kube's default plugins changed by `plugins`
    (multiPoint, filter and score: enabled with weights, disabled, `*` for all) and `pluginConfig`
    (NodeResourcesFit's scoringStrategy, PodTopologySpread's defaultingType/defaultConstraints). Anything else is
    a one-line ConfigError naming it."""
    where = f"{source}: KubeSchedulerConfiguration"
    if document.get("apiVersion") != KUBE_API_VERSION:
        raise ConfigError(f"{where}: apiVersion must be {KUBE_API_VERSION}, got {document.get('apiVersion')!r}")
    unsupported = sorted(set(document) - {"apiVersion", "kind", "profiles"})
    if unsupported:
        raise ConfigError(f"{where}: not supported: {', '.join(unsupported)} (only profiles; the rest are flags)")
    entries = document.get("profiles") or [{}]
    if not isinstance(entries, list):
        raise ConfigError(f"{where}: profiles must be a list")
    return _unique(
        tuple(_kube_profile(e, default_scheduler_name, f"{where}: profiles[{i}]") for i, e in enumerate(entries)), where
    )


def _kube_profile(entry: Any, default_scheduler_name: str, where: str) -> Profile:
    if not isinstance(entry, dict):
        raise ConfigError(f"{where}: expected a mapping")
    unsupported = sorted(set(entry) - {"schedulerName", "plugins", "pluginConfig"})
    if unsupported:
        raise ConfigError(f"{where}: not supported: {', '.join(unsupported)}")
    name = entry.get("schedulerName", default_scheduler_name)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: schedulerName must be a non-empty string")
    args = _plugin_args(entry.get("pluginConfig") or [], where)
    filters = list(FILTERS)
    scores = dict(KUBE_DEFAULT_SCORES)
    plugins = entry.get("plugins") or {}
    if not isinstance(plugins, dict):
        raise ConfigError(f"{where}: plugins must be a mapping of extension points")
    unsupported = sorted(set(plugins) - set(POINTS))
    if unsupported:
        raise ConfigError(f"{where}: plugins: extension point(s) not supported: {', '.join(unsupported)}")
    preemption = True
    for point in POINTS:
        enabled, disabled = _plugin_set(plugins.get(point), f"{where}: plugins.{point}")
        if point == "postFilter":
            unknown = sorted({p for p, _ in enabled} - {PREEMPTION})
            if unknown:
                raise ConfigError(f"{where}: plugins.postFilter: only {PREEMPTION} is supported, got {unknown}")
            preemption = (preemption and not ({"*", PREEMPTION} & set(disabled))) or bool(enabled)
            continue
        if point == "multiPoint" and {"*", PREEMPTION} & set(disabled):
            preemption = False
        if point == "multiPoint" and any(p == PREEMPTION for p, _ in enabled):
            preemption = True
        for plugin in disabled:
            if plugin == "*":
                filters = [] if point != "score" else filters
                scores = {} if point != "filter" else scores
                continue
            if point != "score":
                filters = [f for f in filters if f != plugin]
            if point != "filter":
                scores.pop(plugin, None)
        for plugin, weight in enabled:
            if plugin in BUILT_IN:
                continue
            if plugin in NOT_SUPPORTED:
                raise ConfigError(f"{where}: plugins.{point}: {plugin} is not supported by this scheduler")
            known = (point != "score" and plugin in FILTERS) or (point != "filter" and plugin in SCORES)
            if not known:
                raise ConfigError(f"{where}: plugins.{point}: unknown plugin {plugin!r}")
            if point != "score" and plugin in FILTERS and plugin not in filters:
                filters.append(plugin)
            if point != "filter" and plugin in SCORES:
                scores[plugin] = weight or scores.get(plugin) or 1  # kube: a weight of 0 means 1
    made = {n: _configured(n, args) for n in {*filters, *scores}}
    return Profile(name, tuple(made[f] for f in filters), tuple((made[n], w) for n, w in scores.items()), preemption)


def _plugin_set(raw: Any, where: str) -> tuple[list[tuple[str, int]], list[str]]:
    """(enabled (name, weight), disabled names) of one extension point."""
    if raw is None:
        return [], []
    if not isinstance(raw, dict) or set(raw) - {"enabled", "disabled"}:
        raise ConfigError(f"{where}: expected enabled and/or disabled lists")
    enabled: list[tuple[str, int]] = []
    disabled: list[str] = []
    for kind in ("enabled", "disabled"):
        for p in raw.get(kind) or []:
            if not isinstance(p, dict) or not isinstance(p.get("name"), str) or set(p) - {"name", "weight"}:
                raise ConfigError(f"{where}.{kind}: each entry needs a name (and a weight), got {p!r}")
            weight = p.get("weight", 0)
            if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
                raise ConfigError(f"{where}.{kind}: {p['name']}: weight must be a whole number >= 0")
            if kind == "enabled":
                enabled.append((p["name"], weight))
            else:
                disabled.append(p["name"])
    return enabled, disabled


def _plugin_args(raw: Any, where: str) -> dict[str, Any]:
    """pluginConfig: name → args, for the plugins whose arguments we take."""
    if not isinstance(raw, list):
        raise ConfigError(f"{where}: pluginConfig must be a list of {{name, args}}")
    out: dict[str, Any] = {}
    for entry in raw:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or set(entry) - {"name", "args"}:
            raise ConfigError(f"{where}: pluginConfig: each entry needs a name and args, got {entry!r}")
        name, args = entry["name"], entry.get("args") or {}
        here = f"{where}: pluginConfig {name}"
        if not isinstance(args, dict):
            raise ConfigError(f"{here}: args must be a mapping")
        if name == "NodeResourcesFit":
            if set(args) - {"scoringStrategy"}:
                raise ConfigError(f"{here}: not supported: {', '.join(sorted(set(args) - {'scoringStrategy'}))}")
            out[name] = scoring_strategy(args.get("scoringStrategy") or {}, here)
        elif name == "PodTopologySpread":
            out[name] = _spread_defaults(args, here)
        elif name == "VolumeBinding":
            if set(args) - {"bindTimeoutSeconds"}:
                raise ConfigError(f"{here}: not supported: {', '.join(sorted(set(args) - {'bindTimeoutSeconds'}))}")
            timeout = args.get("bindTimeoutSeconds", BIND_TIMEOUT_SECONDS)
            if isinstance(timeout, bool) or not isinstance(timeout, int) or timeout < 0:
                # kube's ValidateVolumeBindingArgs
                raise ConfigError(f"{here}: invalid BindTimeoutSeconds, should not be a negative value")
            out[name] = timeout
        else:
            raise ConfigError(f"{here}: arguments are not supported for this plugin")
    return out


def _spread_defaults(args: dict[str, Any], where: str) -> tuple[tuple[int, str, str], ...] | None:
    """PodTopologySpreadArgs: None for `defaultingType: System` (kube's system defaults), else the List."""
    if set(args) - {"defaultingType", "defaultConstraints"}:
        raise ConfigError(
            f"{where}: not supported: {', '.join(sorted(set(args) - {'defaultingType', 'defaultConstraints'}))}"
        )
    kind = args.get("defaultingType", "System")
    constraints = args.get("defaultConstraints") or []
    if kind == "System":
        if constraints:
            raise ConfigError(f"{where}: when .defaultingType is System, .defaultConstraints must be empty")
        return None
    if kind != "List":
        raise ConfigError(f"{where}: defaultingType must be System or List, got {kind!r}")
    out = []
    for c in constraints:
        if not isinstance(c, dict) or set(c) - {"maxSkew", "topologyKey", "whenUnsatisfiable"}:
            raise ConfigError(f"{where}: defaultConstraints take maxSkew, topologyKey, whenUnsatisfiable, got {c!r}")
        skew, key, when = c.get("maxSkew"), c.get("topologyKey"), c.get("whenUnsatisfiable")
        if isinstance(skew, bool) or not isinstance(skew, int) or skew < 1:
            raise ConfigError(f"{where}: maxSkew must be a whole number >= 1, got {skew!r}")
        if not isinstance(key, str) or not key:
            raise ConfigError(f"{where}: topologyKey must be a non-empty string")
        if when not in ("DoNotSchedule", "ScheduleAnyway"):
            raise ConfigError(f"{where}: whenUnsatisfiable must be DoNotSchedule or ScheduleAnyway, got {when!r}")
        out.append((skew, key, when))
    return tuple(out)


def _configured(name: str, args: dict[str, Any]) -> Any:
    """One plugin instance, shared by its filter and score roles, made with its pluginConfig args."""
    if name == "NodeResourcesFit":
        return NodeResourcesFit(args.get(name))
    if name == "PodTopologySpread":
        return PodTopologySpread(args.get(name))
    if name == "VolumeBinding":
        return VolumeBinding(args.get(name, BIND_TIMEOUT_SECONDS))
    return (FILTERS.get(name) or SCORES[name])()
