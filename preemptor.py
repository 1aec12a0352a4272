"""The acting side of preemption (kube's DefaultPreemption PostFilter and its preemption executor), for the loop:
after a pod fit nowhere, ask policies/preemption.py where evicting lower-priority pods would make room, then
nominate that node, take the nomination from lower-priority pods nominated there, and have the victims evicted
(report threads; kubeapi.Api.preempt). The pod waits, unschedulable, until the victims' deletions move it on.
Runs in the loop's thread, which owns the cache and the queue.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

from kubernetes.client import V1Pod

from cache import ClusterCache, compact
from kubeapi import Api, PodRef, Reporter, call_quietly
from observability import PREEMPTION_ATTEMPTS, PREEMPTION_VICTIMS
from policies.algorithm import Decision
from policies.framework import Code, NodeInfo, PodInfo, Profile
from policies.preemption import (
    NOT_ELIGIBLE_TERMINATING,
    PREFIX,
    fit_error_with_preemption,
    lower_priority_nominated,
    preempt,
)
from scheduling_queue import ClusterEvent, SchedulingQueue

log = logging.getLogger("my-scheduler")

# How long a preemptor waits for the watch to show its victims' deletions before it may preempt again (a victim
# in its grace period is terminating, which kube's eligibility check covers; this is only the watch's lag).
EVICTION_LAG_SECONDS = 10.0


class Preemptor:
    def __init__(
        self,
        api: Api,
        cache: ClusterCache,
        queue: SchedulingQueue,
        reports: Reporter,
        clock: Callable[[], float],
        *,
        dry_run: bool,
    ) -> None:
        self.api, self.cache, self.queue, self.reports, self.clock = api, cache, queue, reports, clock
        self.dry_run = dry_run
        # Preemptors whose victims' deletions were asked for: uid → (victim uids, until when to wait for them).
        self._evicting: dict[str, tuple[set[str], float]] = {}

    def post_filter(
        self, profile: Profile, pod: V1Pod, nodes: Sequence[NodeInfo], decision: Decision
    ) -> tuple[str, str | None]:
        """kube's DefaultPreemption after a pod fit nowhere: the FailedScheduling message, and the node to
        nominate ("" clears a nomination, None leaves it). Victims are deleted by report threads; the pod
        waits (unschedulable) until their deletions move it on, then takes the nominated node."""
        if not profile.preemption or decision.status.code is not Code.UNSCHEDULABLE:
            return decision.message, None
        ref = PodRef.of(pod)
        if self._still_evicting(ref.uid):
            # Its victims' deletions are not all in the cache yet: another dry run would pick them again.
            return f"{decision.message} {PREFIX}{NOT_ELIGIBLE_TERMINATING}", None
        nominated = self.cache.nominated()
        budgets = list(self.cache.budgets.values())
        PREEMPTION_ATTEMPTS.inc()
        result = preempt(
            profile, pod, nodes, decision.verdicts, budgets, nominated=nominated, objects=self.cache.objects()
        )
        message = fit_error_with_preemption(decision.message, result)
        if result.candidate is None:
            if not result.clear_nomination:
                return message, None
            self.cache.unnominate(ref.uid)
            return message, ""
        node, victims = result.candidate.node, result.candidate.victims
        PREEMPTION_VICTIMS.observe(len(victims))
        names = ", ".join(f"{v.namespace}/{v.name}" for v in victims)
        log.info("%s: preempting %s on %s", ref, names, node, extra={"pod": str(ref), "node": node})
        if self.dry_run:
            return message, None
        # kube: lower-priority pods nominated to that node lose their nomination (and look elsewhere).
        displaced = lower_priority_nominated(pod, nominated.get(node, []))
        for other in displaced:
            self.cache.unnominate(other.uid)
            self.reports.submit(call_quietly, self.api.clear_nomination, PodRef(other.namespace, other.name, other.uid))
        if displaced:
            self.queue.on_cluster_event(ClusterEvent.POD_REMOVED)
        self.cache.nominate(compact(PodInfo.of(pod, node)))
        self._evicting[ref.uid] = ({v.uid for v in victims}, self.clock() + EVICTION_LAG_SECONDS)
        for victim in victims:
            if not victim.deleting:  # its deletion is under way already
                self.reports.submit(self.api.preempt, PodRef(victim.namespace, victim.name, victim.uid), pod, node)
        return message, node

    def _still_evicting(self, uid: str) -> bool:
        """Whether victims this pod's last preemption chose are still in the cache (within the lag the watch may
        take to show their deletion; a deletion that failed is retried after it)."""
        victims, deadline = self._evicting.get(uid, (set(), 0.0))
        if self.clock() < deadline and any(self.cache.has_pod(v) for v in victims):
            return True
        self._evicting.pop(uid, None)
        return False

    def forget(self, uid: str) -> None:
        """The pod is bound or gone: its victims are no longer waited for."""
        self._evicting.pop(uid, None)
