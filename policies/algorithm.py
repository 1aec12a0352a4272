"""The scheduling algorithm: filter the nodes (stopping after enough feasible ones, as kube does), score the
feasible ones, pick the best; or say why no node fits, in kube-scheduler's words. Nothing here does I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from kubernetes.client import V1Pod

from policies.framework import (
    MAX_SCORE,
    SUCCESS,
    ClusterObjects,
    Code,
    CycleState,
    FilterPlugin,
    NodeInfo,
    PodInfo,
    PreFilterSkip,
    Profile,
    Scores,
    Status,
    as_error,
    normalise,
)
from policies.node_table import subset, window, zeros


class PluginError(Exception):
    """Carries a plugin's ERROR status out of the per-node loops to `schedule`, which reports it."""

    def __init__(self, status: Status) -> None:
        super().__init__(status.reasons[0])
        self.status = status


def run_filters(
    profile: Profile, pod: V1Pod, node: NodeInfo, state: CycleState, skipped: frozenset[str] = frozenset()
) -> dict[str, Status]:
    """Every filter's verdict for one node: all of them, so that every failing reason can be shown. A filter
    that raises gets an ERROR status; one in `skipped` (kube's PreFilter Skip) passes without running."""
    verdicts = {}
    for plugin in profile.filters:
        if skipped and plugin.name in skipped:
            verdicts[plugin.name] = SUCCESS
            continue
        try:
            verdicts[plugin.name] = plugin.filter(pod, node, state)
        except Exception as e:  # noqa: BLE001 — any exception from a plugin is its bug, reported as a Status
            verdicts[plugin.name] = as_error(plugin.name, "filter", e)
    return verdicts


def first_failure(filters: Iterable[FilterPlugin], pod: V1Pod, node: NodeInfo, state: CycleState) -> Status:
    """kube's RunFilterPlugins: the status of the first filter that does not pass (an ERROR status for one that
    raised), else SUCCESS. Preemption's dry run reports this one status per node, as kube does."""
    for plugin in filters:
        try:
            status = plugin.filter(pod, node, state)
        except Exception as e:  # noqa: BLE001 — any exception from a plugin is its bug, reported as a Status
            return as_error(plugin.name, "filter", e)
        if not status.ok:
            return status
    return SUCCESS


def pod_uid(pod: V1Pod) -> str:
    """The uid as PodInfo.of records it."""
    meta = pod.metadata
    return str(meta.uid or f"{meta.namespace or ''}/{meta.name or ''}") if meta else "/"


def pod_priority(pod: V1Pod) -> int:
    return (pod.spec.priority if pod.spec else None) or 0


def yielded_to(pod: V1Pod, nominated: Sequence[PodInfo]) -> list[PodInfo]:
    """The pods nominated to a node that `pod` must leave room for (kube's addGENominatedPods): those of equal or
    higher priority, other than the pod itself. Lower-priority ones it may take the room of."""
    priority, uid = pod_priority(pod), pod_uid(pod)
    return [p for p in nominated if p.priority >= priority and p.uid != uid]


def replaced(nodes: Sequence[NodeInfo], index: int, node: NodeInfo) -> list[NodeInfo]:
    """The cluster with `node` (a changed clone) in place of nodes[index]."""
    cluster = list(nodes)
    cluster[index] = node
    return cluster


def with_pods(
    state: CycleState, nodes: Sequence[NodeInfo], index: int, pods: Iterable[PodInfo]
) -> tuple[NodeInfo, CycleState]:
    """nodes[index] with `pods` added (a clone), and the state derived from `state` for that change."""
    added = nodes[index].clone()
    for p in pods:
        added.add_pod(p)
    return added, state.standing_in(replaced(nodes, index, added), index)


def filter_with_nominated(
    filters: Sequence[FilterPlugin],
    pod: V1Pod,
    state: CycleState,
    *,
    cluster: Sequence[NodeInfo],
    index: int,
    yielded: Sequence[PodInfo],
) -> Status:
    """kube's RunFilterPluginsWithNominatedPods for the node cluster[index], a clone preemption changed, where
    `state` is the CycleState of the cluster as it is: the first failing status with the `yielded` nominated
    pods added, else the first failing status without them, each pass with a state derived for the change. The
    pod must fit both ways: resources and anti-affinity are harder with the nominated pods, pod affinity
    without them, and they may yet go elsewhere."""
    node = cluster[index]
    if yielded:
        status = first_failure(filters, pod, *with_pods(state, cluster, index, yielded))
        if not status.ok:
            return status
    return first_failure(filters, pod, node, state.standing_in(cluster, index))


def skipped_filters(profile: Profile, pod: V1Pod, state: CycleState) -> frozenset[str]:
    """The pod filters kube's PreFilter skips for this pod on the cluster `state` was made for. The skip holds
    when preemption removes pods or nominated pods are added, as in kube (the CycleState clone keeps it).
    Raises PluginError for a filter whose skip check raised."""
    return frozenset(p.name for p, pre in profile.pod_filters if _skips(p, pre, pod, state))


def run_scores(
    profile: Profile, pod: V1Pod, nodes: Sequence[NodeInfo], state: CycleState
) -> tuple[Scores, dict[str, Scores]]:
    """Weighted totals per node, and each plugin's normalised (unweighted) scores for `explain`. A plugin that
    raises or scores outside 0..100 raises PluginError with its ERROR status."""
    state.scored = nodes
    totals = zeros(len(nodes))
    per_plugin: dict[str, Scores] = {}
    for (plugin, weight, uniform), batch in zip(profile.weighted_scores, profile.batch_scores, strict=True):
        try:
            same = uniform.uniform_score(pod, state) if uniform else None
            if same is not None:
                normalised = np.full(len(nodes), float(same))
            elif batch is not None:
                normalised = normalise(batch.score_all(pod, nodes, state), plugin.normalize)
            else:
                normalised = normalise([plugin.score(pod, n, state) for n in nodes], plugin.normalize)
            if not ((normalised >= 0) & (normalised <= MAX_SCORE)).all():
                raise ValueError(f"a score outside 0..{MAX_SCORE}")
        except Exception as e:  # any exception from a plugin is its bug, reported as a Status
            raise PluginError(as_error(plugin.name, "score", e)) from e
        per_plugin[plugin.name] = normalised
        totals += weight * normalised
    return totals, per_plugin


def reasons(verdicts: Mapping[str, Status]) -> list[str]:
    return [r for status in verdicts.values() for r in status.reasons]


def failure_message(node_count: int, reasons_per_node: Iterable[Iterable[str]]) -> str:
    """kube-scheduler's FitError text: `0/3 nodes are available: 1 <reason>, 2 <reason>.`"""
    histogram = Counter(r for node_reasons in reasons_per_node for r in set(node_reasons))
    parts = sorted(f"{count} {reason}" for reason, count in histogram.items())
    if node_count == 0:
        return "no nodes available to schedule pods"
    return f"0/{node_count} nodes are available: {', '.join(parts)}."


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of scheduling one pod: a node, or the reasons no node fits (per node name), or a plugin's
    ERROR status (`status`; `message` is its text)."""

    node: str | None
    message: str
    verdicts: dict[str, dict[str, Status]]
    totals: dict[str, float]
    scores: dict[str, dict[str, float]]
    status: Status = SUCCESS
    examined: int = 0  # nodes filtered before enough feasible ones were found (the next pod starts after them)


def nodes_to_find(total: int, percentage: int = 0) -> int:
    """kube-scheduler's numFeasibleNodesToFind: in big clusters stop after enough feasible nodes."""
    if total < 100 or percentage >= 100:
        return total
    if percentage <= 0:
        percentage = max(5, 50 - total // 125)
    return max(100, total * percentage // 100)


class FilterCache:
    """The filters that read only the pod's spec and the node object (`node_only`) give the same verdict for every
    pod with the same such spec, so a burst of pods of one workload pays for them once per node, not once per pod
    and node. Verdicts hold while the node objects do not change: the cluster cache starts a new FilterCache when a
    node changes (cache.py), and a mask asked for another node list (nodes came or went) is judged again."""

    def __init__(self) -> None:
        self._nodes: Sequence[NodeInfo] | None = None
        self._masks: dict[Hashable, npt.NDArray[np.bool_]] = {}

    def mask(
        self, pod: V1Pod, nodes: Sequence[NodeInfo], compute: Callable[[], npt.NDArray[np.bool_]]
    ) -> npt.NDArray[np.bool_]:
        """For every node of `nodes` at once."""
        if nodes is not self._nodes:
            self._nodes, self._masks = nodes, {}
        key = _shape(pod)
        if key not in self._masks:
            if len(self._masks) >= MAX_SHAPES:
                self._masks = {}
            self._masks[key] = compute()
        return self._masks[key]


MAX_SHAPES = 256  # masks kept at most (of as many bytes as nodes each): pods of unique shapes do not pile up


def _shape(pod: V1Pod) -> Hashable:
    """What the node-only filters read of a pod. Tolerations as tuples: every pod carries the two default ones,
    and a client model's repr costs ~14 µs (pprint)."""
    spec = pod.spec
    if spec is None:
        return None
    affinity = spec.affinity.node_affinity if spec.affinity else None
    return (
        spec.scheduler_name,
        tuple((t.key, t.operator, t.value, t.effect, t.toleration_seconds) for t in spec.tolerations or ()),
        tuple(sorted((spec.node_selector or {}).items())),
        None if affinity is None else repr(affinity),
    )


def prefilter_message(node_count: int, status: Status) -> str:
    """kube's FitError text when a PreFilter rejected the pod: its message alone, not counted per node
    (framework/types.go, FitError.Error; Status.Message joins the reasons with ", ")."""
    return f"0/{node_count} nodes are available: {', '.join(status.reasons)}."


def _prefilter(profile: Profile, pod: V1Pod, state: CycleState) -> tuple[str, Status] | None:
    """(plugin, status) of the first PreFilter that rejects the pod, in the profile's order (kube's
    RunPreFilterPlugins stops at the first); raises PluginError for one that fails with an error."""
    for plugin, pre in profile.prefilters:
        try:
            status = pre.prefilter(pod, state)
        except Exception as e:  # any exception from a plugin is its bug, reported as a Status
            raise PluginError(as_error(plugin.name, "prefilter", e)) from e
        if status.code is Code.ERROR:
            raise PluginError(status)
        if not status.ok:
            return plugin.name, status
    return None


def _skips(plugin: FilterPlugin, pre: PreFilterSkip | None, pod: V1Pod, state: CycleState) -> bool:
    try:
        return pre is not None and pre.skips(pod, state)
    except Exception as e:  # any exception from a plugin is its bug, reported as a Status
        raise PluginError(as_error(plugin.name, "prefilter", e)) from e


def _passes(filters: Sequence[FilterPlugin], pod: V1Pod, node: NodeInfo, state: CycleState) -> bool:
    for plugin in filters:  # a plain loop is faster, and this runs for every pod and node
        try:
            status = plugin.filter(pod, node, state)
        except Exception as e:  # any exception from a plugin is its bug, reported as a Status
            raise PluginError(as_error(plugin.name, "filter", e)) from e
        if status.code is not Code.SUCCESS:
            if status.code is Code.ERROR:
                raise PluginError(status)
            return False
    return True


def _errors(verdicts: Mapping[str, Mapping[str, Status]]) -> Status | None:
    return next((s for v in verdicts.values() for s in v.values() if s.code is Code.ERROR), None)


@dataclass(frozen=True, slots=True)
class _Nominated:
    """Pods nominated to nodes (by node name) that the pod must leave room for, and the pod filters kube's
    PreFilter skipped on the cluster as it is (the skip holds with the nominated pods added, as in kube)."""

    pods: Mapping[str, Sequence[PodInfo]]
    skipped: frozenset[str]

    def verdicts(
        self,
        profile: Profile,
        pod: V1Pod,
        nodes: Sequence[NodeInfo],
        index: int,
        state: CycleState,
    ) -> dict[str, Status]:
        """Every filter's verdict, the way RunFilterPluginsWithNominatedPods decides: with the nominated pods
        added if that fails, else without them."""
        node = nodes[index]
        yielded = self.pods.get(node.name)
        if yielded:
            first = run_filters(profile, pod, *with_pods(state, nodes, index, yielded), self.skipped)
            if not all(s.ok for s in first.values()):
                return first
        return run_filters(profile, pod, node, state)

    def passes(
        self, others: Sequence[FilterPlugin], pod: V1Pod, nodes: Sequence[NodeInfo], index: int, state: CycleState
    ) -> bool:
        """Whether the pod filters still pass with the nominated pods added (the node-only ones cannot change)."""
        node = nodes[index]
        yielded = self.pods.get(node.name)
        if not yielded:
            return True
        return _passes(others, pod, *with_pods(state, nodes, index, yielded))


def _nominated(
    profile: Profile, pod: V1Pod, nominated: Mapping[str, Sequence[PodInfo]] | None, state: CycleState
) -> _Nominated | None:
    if not nominated:
        return None
    yielded = {name: ps for name, pods in nominated.items() if (ps := yielded_to(pod, pods))}
    if not yielded:
        return None
    return _Nominated(yielded, skipped_filters(profile, pod, state))


def schedule(
    profile: Profile,
    pod: V1Pod,
    nodes: Sequence[NodeInfo],
    *,
    find: int | None = None,
    start: int = 0,
    cache: FilterCache | None = None,
    explain: bool = False,
    nominated: Mapping[str, Sequence[PodInfo]] | None = None,
    objects: ClusterObjects | None = None,
) -> Decision:
    """Filter nodes from `start` (rotating, as kube does) until `find` feasible ones are found, score them,
    pick the best (ties: lowest node name). A pod that fits nowhere has been checked against every node.

    `nominated` are the pods nominated to each node (status.nominatedNodeName, by node name) and not bound yet:
    the pod must fit a node both with those of equal or higher priority and without them (kube's
    RunFilterPluginsWithNominatedPods). A pod with a nominatedNodeName of its own is tried on that node first
    and goes there if it fits (kube's evaluateNominatedNode).

    Only `explain` (or a pod that fits nowhere) keeps every filter's verdict and every plugin's score; the
    daemon's path stops at a node's first failing filter. A plugin that raises makes the decision an ERROR
    status naming it (kube's framework.Error), with the verdicts gathered so far. `objects`: what the cache knows
    of the cluster besides the nodes (namespaces' labels, Services' and controllers' selectors, image counts);
    without them a namespaceSelector sees only the name label and there are no system default spread
    constraints."""
    verdicts: dict[str, dict[str, Status]] = {}
    try:
        return _schedule(
            profile,
            pod,
            nodes,
            verdicts,
            find=find,
            start=start,
            cache=cache,
            explain=explain,
            nominated=nominated,
            objects=objects,
        )
    except PluginError as e:
        return Decision(None, e.status.reasons[0], verdicts, {}, {}, e.status)


def _schedule(
    profile: Profile,
    pod: V1Pod,
    nodes: Sequence[NodeInfo],
    verdicts: dict[str, dict[str, Status]],
    *,
    find: int | None,
    start: int,
    cache: FilterCache | None,
    explain: bool,
    nominated: Mapping[str, Sequence[PodInfo]] | None,
    objects: ClusterObjects | None = None,
) -> Decision:
    state = CycleState(nodes, objects)
    if nodes and (rejected := _prefilter(profile, pod, state)) is not None:
        plugin, status = rejected
        verdicts.update((n.name, {plugin: status}) for n in nodes)
        message = prefilter_message(len(nodes), status)
        return Decision(None, message, verdicts, {}, {}, Status(Code.UNSCHEDULABLE, (message,)))
    find = len(nodes) if find is None else max(find, 1)
    node_only = profile.node_only_filters
    others = [p for p, pre in profile.pod_filters if explain or not _skips(p, pre, pod, state)]
    extra = _nominated(profile, pod, nominated, state)  # None in the common case: no per-node work then
    own = _own_nomination(pod, nodes)
    # kube's evaluateNominatedNode: the node preemption made room on is likely the only one that fits, so it is
    # tried first and taken without scoring if it passes. `explain` still shows every node, and picks it too.
    if (
        own is not None
        and not explain
        and _passes(node_only, pod, nodes[own], state)
        and _passes(others, pod, nodes[own], state)
        and (extra is None or extra.passes(others, pod, nodes, own, state))
    ):
        return Decision(nodes[own].name, "", {}, {}, {})
    feasible: Sequence[NodeInfo]
    if explain or extra is not None:
        feasible, examined = _feasible_one_by_one(
            profile,
            pod,
            nodes,
            state,
            others=others,
            cache=cache,
            extra=extra,
            find=find,
            start=start,
            verdicts=verdicts if explain else None,
        )
    else:
        feasible, examined = _feasible(profile, pod, nodes, state, others=others, cache=cache, find=find, start=start)
    if not verdicts and not feasible:
        verdicts.update(
            (n.name, extra.verdicts(profile, pod, nodes, i, state) if extra else run_filters(profile, pod, n, state))
            for i, n in enumerate(nodes)
        )
    if error := _errors(verdicts):
        raise PluginError(error)
    if not feasible:
        message = failure_message(len(nodes), (reasons(v) for v in verdicts.values()))
        return Decision(None, message, verdicts, {}, {}, Status(Code.UNSCHEDULABLE, (message,)), examined)
    totals, per_plugin = run_scores(profile, pod, feasible, state)
    by_name = dict(zip((n.name for n in feasible), totals.tolist(), strict=True))
    scores = (
        {n.name: {plugin: float(values[i]) for plugin, values in per_plugin.items()} for i, n in enumerate(feasible)}
        if explain
        else {}
    )
    best = min((feasible[i] for i in np.flatnonzero(totals == totals.max()).tolist()), key=lambda n: n.name)
    if own is not None and nodes[own] in feasible:  # only `explain` gets here with a feasible nominated node
        best = nodes[own]
    return Decision(best.name, "", verdicts, by_name, scores, examined=examined)


def _feasible(
    profile: Profile,
    pod: V1Pod,
    nodes: Sequence[NodeInfo],
    state: CycleState,
    *,
    others: Sequence[FilterPlugin],
    cache: FilterCache | None,
    find: int,
    start: int,
) -> tuple[Sequence[NodeInfo], int]:
    """The daemon's filtering: the node-only filters' verdicts for every node (once per pod shape while the nodes
    stay as they are), then from `start` (rotating) a WINDOW of nodes at a time the batch filters' verdicts on all
    of them at once and the other pod filters' node by node, until `find` nodes pass, as kube examines them. (The
    feasible nodes, how many nodes were examined.)"""
    count = len(nodes)
    if not count:
        return [], 0
    node_only = _node_only(profile, pod, nodes, state, cache)
    batches = [(p, batch) for p in others if (batch := profile.batch_filters.get(p.name)) is not None]
    one_by_one = [p for p in others if p.name not in profile.batch_filters]
    chosen: list[int] = []
    for low, high in _windows(start, count):
        passing = node_only[low:high]
        some = window(nodes, low, high)
        for plugin, batch in batches:
            try:
                passing = passing & batch.filter_all(pod, some, state)
            except Exception as e:  # any exception from a plugin is its bug, reported as a Status
                raise PluginError(as_error(plugin.name, "filter", e)) from e
        for at in (np.flatnonzero(passing) + low).tolist():
            if one_by_one and not _passes(one_by_one, pod, nodes[at], state):
                continue
            chosen.append(at)
            if len(chosen) >= find:
                return subset(nodes, np.array(chosen, dtype=np.intp)), (at - start) % count + 1
    return subset(nodes, np.array(chosen, dtype=np.intp)), count


WINDOW = 500  # nodes judged at once: numpy keeps the GIL through arithmetic on at most 500 elements (node_table.Rows)


def _windows(start: int, count: int) -> Iterator[tuple[int, int]]:
    """Positions start..count-1 then 0..start-1, as (low, high) slices of at most WINDOW."""
    for low, high in ((start, count), (0, start)):
        for at in range(low, high, WINDOW):
            yield at, min(at + WINDOW, high)


def _feasible_one_by_one(
    profile: Profile,
    pod: V1Pod,
    nodes: Sequence[NodeInfo],
    state: CycleState,
    *,
    others: Sequence[FilterPlugin],
    cache: FilterCache | None,
    extra: _Nominated | None,
    find: int,
    start: int,
    verdicts: dict[str, dict[str, Status]] | None,
) -> tuple[list[NodeInfo], int]:
    """Filtering node by node from `start` until `find` nodes pass, for a pod that must leave room for nominated
    pods, and for `explain` (`verdicts`: every filter's verdict on every node examined is put there)."""
    node_only = _node_only(profile, pod, nodes, state, cache) if verdicts is None else None
    feasible: list[NodeInfo] = []
    examined = 0
    for i in range(len(nodes)):
        examined = i + 1
        index = (start + i) % len(nodes)
        node = nodes[index]
        if verdicts is not None:
            verdict = (
                extra.verdicts(profile, pod, nodes, index, state) if extra else run_filters(profile, pod, node, state)
            )
            verdicts[node.name] = verdict
            ok = all(s.ok for s in verdict.values())
        else:
            ok = (
                node_only is not None  # always, here: only `explain` goes without
                and bool(node_only[index])
                and _passes(others, pod, node, state)
                and (extra is None or extra.passes(others, pod, nodes, index, state))
            )
        if ok:
            feasible.append(node)
            if len(feasible) >= find:
                break
    return feasible, examined


def _node_only(
    profile: Profile, pod: V1Pod, nodes: Sequence[NodeInfo], state: CycleState, cache: FilterCache | None
) -> npt.NDArray[np.bool_]:
    """Whether each node passes the node-only filters: from the FilterCache when there is one."""

    def judge() -> npt.NDArray[np.bool_]:
        return np.fromiter((_passes(profile.node_only_filters, pod, n, state) for n in nodes), np.bool_, len(nodes))

    return cache.mask(pod, nodes, judge) if cache is not None else judge()


def _own_nomination(pod: V1Pod, nodes: Sequence[NodeInfo]) -> int | None:
    """The index of the node the pod is nominated to (status.nominatedNodeName), if it is one of `nodes`."""
    name = pod.status.nominated_node_name if pod.status else None
    return next((i for i, n in enumerate(nodes) if n.name == name), None) if name else None
