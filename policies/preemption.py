"""DefaultPreemption's decision (kube-scheduler's PostFilter), as kube v1.37 makes it for a single pod: which
lower-priority pods to evict, from which node, so that a pod that fits nowhere fits there. Nothing here does I/O:
the daemon evicts the victims, nominates the node and records the events (the strings for those are below).

Sources: framework/preemption/preemption.go (evaluate, findCandidates, DryRunPreemption, pickOneNodeForPreemption),
framework/plugins/defaultpreemption/default_preemption.go (SelectVictimsOnNode, PodEligibleToPreemptOthers,
calculateNumCandidates), framework/preemption/util.go (FilterVictimsWithPDBViolation, MoreImportantVictim,
PodTerminatingByPreemption), pkg/scheduler/util/utils.go (GetPodStartTime, GetEarliestPodStartTime).

1. A pod with preemptionPolicy Never does not preempt; nor one whose nominated node still has a lower-priority
   pod terminating because of preemption (unless that node is now unresolvable for it).
2. The nodes whose filter status is Unschedulable (not UnschedulableAndUnresolvable) are dry-run in order: all
   pods of strictly lower priority are removed; if the pod then fits (with the nominated pods, as in
   scheduling), victims are reprieved one by one, most important first, those whose eviction would violate a
   PodDisruptionBudget before the others, keeping each that the pod still fits beside.
3. The dry run stops once it has enough candidates (10% of the nodes tried, at least 100) including one without
   PDB violations; one node is picked: fewest PDB violations, lowest highest victim priority, smallest sum of
   priorities, fewest victims, latest start of its most important victims, then the first.

Differences from kube: pod groups (GenericWorkload) and extenders are not modelled; the dry run starts at the
first node, not a random offset, and checks nodes one by one, so the candidates are the first ones in node
order; equally important victims keep the node's pod order (kube's sort is not stable), and the final
tie-break is the first candidate in that order (kube's is map order).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from kubernetes.client import V1LabelSelector, V1Pod, V1PodDisruptionBudget

from policies import labels
from policies.algorithm import (
    PluginError,
    failure_message,
    filter_with_nominated,
    pod_priority,
    skipped_filters,
    yielded_to,
)
from policies.framework import (
    SUCCESS,
    ClusterObjects,
    Code,
    CycleState,
    FilterPlugin,
    NodeInfo,
    PodInfo,
    Profile,
    Status,
    unresolvable,
)

# PostFilter's messages (default_preemption.go, preemption.go); PostFilter prefixes each with "preemption: ".
PREFIX = "preemption: "
NOT_ELIGIBLE_NEVER = "not eligible due to preemptionPolicy=Never."
NOT_ELIGIBLE_TERMINATING = "not eligible due to a terminating pod on the nominated node."
NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"

# DefaultPreemptionArgs' defaults (apis/config/v1/defaults.go).
MIN_CANDIDATE_NODES_PERCENTAGE = 10
MIN_CANDIDATE_NODES_ABSOLUTE = 100

# What kube's executor writes on each victim (framework/preemption/executor.go), for the acting side: a
# DisruptionTarget condition patched into the victim's status before it is deleted, then an event on it.
DISRUPTION_TARGET = "DisruptionTarget"
PREEMPTION_BY_SCHEDULER = "PreemptionByScheduler"  # v1.PodReasonPreemptionByScheduler
PREEMPTED_REASON = "Preempted"  # the event's reason (type Normal)
PREEMPTING_ACTION = "Preempting"  # the event's action


def disruption_message(scheduler_name: str) -> str:
    """The DisruptionTarget condition's message."""
    return f"{scheduler_name}: preempting to accommodate a higher priority pod"


def preempted_message(preemptor_uid: str, node: str) -> str:
    """The Preempted event's message on a victim (the preemptor is the event's related object)."""
    return f"Preempted by pod {preemptor_uid} on node {node}"


@dataclass(frozen=True, slots=True)
class Budget:
    """A PodDisruptionBudget as preemption reads it."""

    namespace: str
    name: str
    selector: V1LabelSelector | None  # spec.selector; nil and empty both select no pod here, as in kube
    disruptions_allowed: int  # status.disruptionsAllowed
    disrupted_pods: frozenset[str]  # the pod names in status.disruptedPods

    @classmethod
    def of(cls, pdb: V1PodDisruptionBudget) -> Budget:
        meta, spec, status = pdb.metadata, pdb.spec, pdb.status
        return cls(
            namespace=str(meta.namespace or "") if meta else "",
            name=str(meta.name or "") if meta else "",
            selector=spec.selector if spec else None,
            disruptions_allowed=int(status.disruptions_allowed or 0) if status else 0,
            disrupted_pods=frozenset((status.disrupted_pods or {}) if status else ()),
        )


@dataclass(frozen=True, slots=True)
class Candidate:
    """A node and the pods to evict from it, most important first."""

    node: str
    victims: tuple[PodInfo, ...]
    pdb_violations: int


@dataclass(frozen=True, slots=True)
class Preemption:
    """PostFilter's outcome. `message` is its status message ("preemption: …"), appended to the FailedScheduling
    text by `fit_error_with_preemption`; "" when preemption did not run (no nodes at all)."""

    candidate: Candidate | None  # None: preemption cannot help now
    message: str
    # kube's PostFilterResult with an empty nominated node: preemption cannot help on any node, so a
    # nominatedNodeName the pod carries is cleared. False when the pod merely waits (not eligible) or on an
    # error: the nomination is left as it is.
    clear_nomination: bool = False


def fit_error_with_preemption(fit_message: str, preemption: Preemption) -> str:
    """The FailedScheduling message after PostFilter: kube's FitError.Error() appends the PostFilter message
    after a space (framework/types.go)."""
    return f"{fit_message} {preemption.message}" if preemption.message else fit_message


def node_code(verdict: Mapping[str, Status] | None) -> Code:
    """A node's status code as kube's NodeToStatus holds it: the first failing filter's (kube stops at it); a
    node without verdicts gets kube's default absent-node status, UnschedulableAndUnresolvable."""
    if verdict is None:
        return Code.UNRESOLVABLE
    return next((s.code for s in verdict.values() if not s.ok), Code.SUCCESS)


def ineligible(
    pod: V1Pod, nodes: Mapping[str, NodeInfo], verdicts: Mapping[str, Mapping[str, Status]] | None = None
) -> str | None:
    """kube's PodEligibleToPreemptOthers: why the pod may not preempt now, or None. A pod whose nominated node
    still has a lower-priority pod terminating by preemption waits for it, unless the node's filter verdicts
    (when given) say it is unresolvable for the pod now."""
    if pod.spec and pod.spec.preemption_policy == "Never":
        return NOT_ELIGIBLE_NEVER
    nominated = pod.status.nominated_node_name if pod.status else None
    if not nominated:
        return None
    if verdicts is not None and node_code(verdicts.get(nominated)) is Code.UNRESOLVABLE:
        return None
    node = nodes.get(nominated)
    priority = pod_priority(pod)
    if node and any(p.priority < priority and p.terminating_by_preemption for p in node.pods.values()):
        return NOT_ELIGIBLE_TERMINATING
    return None


def lower_priority_nominated(pod: V1Pod, nominated: Iterable[PodInfo]) -> list[PodInfo]:
    """kube's getLowerPriorityNominatedPods (executor.go): of the pods nominated to the chosen node, those of lower
    priority than the preemptor. kube clears their nominatedNodeName once the victims are evicted, so they look
    for another node sooner."""
    priority = pod_priority(pod)
    return [p for p in nominated if p.priority < priority]


def candidates_to_find(potential_nodes: int) -> int:
    """kube's calculateNumCandidates."""
    wanted = max(potential_nodes * MIN_CANDIDATE_NODES_PERCENTAGE // 100, MIN_CANDIDATE_NODES_ABSOLUTE)
    return min(wanted, potential_nodes)


def preempt(
    profile: Profile,
    pod: V1Pod,
    nodes: Sequence[NodeInfo],
    verdicts: Mapping[str, Mapping[str, Status]],
    budgets: Sequence[Budget],
    *,
    nominated: Mapping[str, Sequence[PodInfo]] | None = None,
    objects: ClusterObjects | None = None,
) -> Preemption:
    """kube's DefaultPreemption PostFilter for a pod that fits no node: `verdicts` are the failed schedule()'s
    (Decision.verdicts), `nominated` and `objects` as for schedule()."""
    if not nodes:  # kube runs no PostFilter without nodes (ErrNoNodesAvailable)
        return Preemption(None, "")
    if why := ineligible(pod, {n.name: n for n in nodes}, verdicts):
        return Preemption(None, PREFIX + why)
    potential = [i for i, n in enumerate(nodes) if node_code(verdicts.get(n.name)) is Code.UNSCHEDULABLE]
    # The cluster as it is: each dry run adjusts its facts for the one node it changes.
    state = CycleState(nodes, objects)
    try:
        skipped = skipped_filters(profile, pod, state)
    except PluginError as e:
        return Preemption(None, PREFIX + e.status.reasons[0])
    filters = [p for p in profile.filters if p.name not in skipped]
    wanted = candidates_to_find(len(potential))
    clean: list[Candidate] = []
    violating: list[Candidate] = []
    statuses: dict[str, Status] = {}
    errors: list[str] = []
    for i in potential:
        name = nodes[i].name
        yielded = yielded_to(pod, nominated.get(name, ())) if nominated else []
        status, victims, violations = select_victims(filters, pod, state, index=i, budgets=budgets, yielded=yielded)
        if status.ok and victims:
            found = clean if violations == 0 else violating
            if len(found) < wanted:  # kube's candidateList drops what comes beyond its capacity
                found.append(Candidate(name, tuple(victims), violations))
            if clean and len(clean) + len(violating) >= wanted:
                break
            continue
        if status.ok:
            status = _error_status(f'expected at least one victim pod on node "{name}"')
        if status.code is Code.ERROR:
            errors.append(status.reasons[0])
        statuses[name] = status
    candidates = clean + violating
    if not candidates:
        if errors:
            return Preemption(None, PREFIX + _aggregate(errors))
        reasons = (statuses[n.name].reasons if n.name in statuses else (NOT_HELPFUL,) for n in nodes)
        return Preemption(None, PREFIX + failure_message(len(nodes), reasons), clear_nomination=True)
    best = pick_one(candidates)
    return Preemption(
        best,
        PREFIX + f"found a potential placement for pod on node {best.node}, preempting {len(best.victims)} victims",
    )


def select_victims(
    filters: Sequence[FilterPlugin],
    pod: V1Pod,
    state: CycleState,
    *,
    index: int,
    budgets: Sequence[Budget],
    yielded: Sequence[PodInfo],
) -> tuple[Status, list[PodInfo], int]:
    """kube's SelectVictimsOnNode for nodes[index]: the status (SUCCESS, or why preemption cannot help there),
    the fewest victims, most important first, and how many of them violate a PodDisruptionBudget. `state` is the
    CycleState of the cluster as it is."""
    nodes = state.nodes
    node = nodes[index]
    priority = pod_priority(pod)
    possible = [p for p in node.pods.values() if p.priority < priority]
    if not possible:
        return unresolvable(NO_VICTIMS), [], 0
    clone = node.clone()
    for p in possible:
        clone.remove_pod(p.uid)
    cluster = list(nodes)
    cluster[index] = clone  # the same clone changes as victims are tried, so one list serves every check
    status = filter_with_nominated(filters, pod, state, cluster=cluster, index=index, yielded=yielded)
    if not status.ok:
        return status, [], 0
    possible.sort(key=_importance)
    violating, others = split_by_budgets(possible, budgets)
    victims: list[PodInfo] = []

    def reprieved(victim: PodInfo) -> bool:
        clone.add_pod(victim)
        if filter_with_nominated(filters, pod, state, cluster=cluster, index=index, yielded=yielded).ok:
            return True
        clone.remove_pod(victim.uid)
        victims.append(victim)
        return False

    violations = sum(1 for v in violating if not reprieved(v))
    for v in others:
        reprieved(v)
    if violating and others:
        victims.sort(key=_importance)
    return SUCCESS, victims, violations


def _start(pod: PodInfo) -> float:
    # kube's GetPodStartTime: a pod without status.startTime counts as starting now, after every started one.
    return math.inf if pod.start_time is None else pod.start_time


def _importance(pod: PodInfo) -> tuple[int, float]:
    """Sort key, most important first: kube's MoreImportantVictim for single pods (higher priority, then the
    earlier start)."""
    return -pod.priority, _start(pod)


def _selector_valid(selector: V1LabelSelector) -> bool:
    """What metav1.LabelSelectorAsSelector accepts: In/NotIn with values, Exists/DoesNotExist without."""
    for r in selector.match_expressions or []:
        if r.operator in ("In", "NotIn") and not r.values:
            return False
        if r.operator in ("Exists", "DoesNotExist") and r.values:
            return False
        if r.operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
    return True


def _selects(budget: Budget, pod: PodInfo) -> bool:
    selector = budget.selector
    # A nil or empty selector selects no pod here (kube: "A PDB with a nil or empty selector matches nothing"),
    # and an invalid one is skipped.
    if selector is None or labels.is_empty(selector) or not _selector_valid(selector):
        return False
    return labels.matches(selector, pod.labels)


def split_by_budgets(pods: Iterable[PodInfo], budgets: Sequence[Budget]) -> tuple[list[PodInfo], list[PodInfo]]:
    """kube's FilterVictimsWithPDBViolation: (violating, not violating), each in the given order. Each matching
    budget's disruptionsAllowed is spent pod by pod in that order; a pod violates once one goes below zero.
    Pods listed in a budget's disruptedPods are already counted by it; a pod without labels matches none."""
    allowed = [b.disruptions_allowed for b in budgets]

    def violates(pod: PodInfo) -> bool:
        if not pod.labels:
            return False
        for i, budget in enumerate(budgets):
            if budget.namespace != pod.namespace or not _selects(budget, pod) or pod.name in budget.disrupted_pods:
                continue
            allowed[i] -= 1
            if allowed[i] < 0:
                return True
        return False

    violating: list[PodInfo] = []
    others: list[PodInfo] = []
    for pod in pods:
        (violating if violates(pod) else others).append(pod)
    return violating, others


def _earliest_start_of_most_important(victims: Sequence[PodInfo]) -> float:
    """kube's GetEarliestPodStartTime: the earliest start among the victims of the highest priority."""
    top = max(v.priority for v in victims)
    return min(_start(v) for v in victims if v.priority == top)


# kube's MaxInt32+1, added to each priority so that negative priorities still make a larger sum per victim.
_PRIORITY_OFFSET = 2**31


def pick_one(candidates: Sequence[Candidate]) -> Candidate:
    """kube's pickOneNodeForPreemption: each score in turn keeps the candidates with the highest one, until one
    is left; then the first."""
    scores: tuple[Callable[[Candidate], float], ...] = (
        lambda c: -c.pdb_violations,
        lambda c: -c.victims[0].priority,  # the victims are most important first
        lambda c: -sum(v.priority + _PRIORITY_OFFSET for v in c.victims),
        lambda c: -len(c.victims),
        lambda c: _earliest_start_of_most_important(c.victims),
    )
    left = list(candidates)
    for score in scores:
        if len(left) == 1:
            break
        best = max(score(c) for c in left)
        left = [c for c in left if score(c) == best]
    return left[0]


def _error_status(message: str) -> Status:
    """An ERROR status made from a message (kube's AsStatus(fmt.Errorf(…)))."""
    return Status(Code.ERROR, (message,))


def _aggregate(messages: Sequence[str]) -> str:
    """apimachinery's utilerrors.NewAggregate(...).Error(): one message as is, several de-duplicated in brackets."""
    unique = list(dict.fromkeys(messages))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"
