"""What the informers see, handed to the loop (kube-scheduler's eventhandlers.go): each informer's thread turns
its objects into the cache's compact records (cache.py) and puts them in the inbox, waking the loop; the loop's
thread, which owns the cache, applies them (`apply`) and learns which cluster events could help unschedulable
pods. Our own binds coming back are only confirmed, not read again.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from queue import Empty, SimpleQueue
from typing import Any

from cache import (
    SELECTOR_KINDS,
    STORAGE_KINDS,
    ClusterCache,
    budget,
    namespace_labels,
    node_facts,
    pending_pod,
    pod_info,
    storage_key,
    storage_record,
    workload_selector,
)
from cli import Config
from informer import Informer
from kubeapi import ASSIGNED, Api, describe, is_transient, pending_selector
from policies.volumes import VOLUME_FILTERS
from scheduling_queue import ClusterEvent, PendingPod

log = logging.getLogger("my-scheduler")

SYNC_TIMEOUT_SECONDS = 120.0  # how long the first LISTs may take before the loop gives up waiting

# What informer threads hand to the loop: (what, key, record); record None means it is gone.
Message = tuple[str, str, Any]


class EventHandlers:
    """The informers of what the profiles need, and their inbox."""

    def __init__(self, api: Api, config: Config, cache: ClusterCache, stop: threading.Event) -> None:
        self.cache = cache  # read by `_on_assigned` in an informer thread: only whether a pod is ours, assumed
        self.profiles = {p.scheduler_name for p in config.profiles}
        self.stop = stop
        self.inbox: SimpleQueue[Message] = SimpleQueue()
        self.wake = threading.Event()  # watch mode: something to do
        self.informers = [
            Informer(api, "Node", "", self._on_node, stop),
            Informer(api, "Pod", ASSIGNED, self._on_assigned, stop),
            Informer(api, "Namespace", "", self._on_namespace, stop),  # namespaceSelector's labels
            # Services' and controllers' selectors: PodTopologySpread's system defaults
            *(Informer(api, kind, "", self._on_selector(kind), stop) for kind in SELECTOR_KINDS),
        ]
        if config.mode == "watch":
            self.informers.append(Informer(api, "Pod", pending_selector(self.profiles), self._on_pending, stop))
        if any(p.preemption for p in config.profiles):
            self.informers.append(Informer(api, "PodDisruptionBudget", "", self._on_budget, stop))
        if any(f.name in VOLUME_FILTERS for p in config.profiles for f in p.filters):
            self.informers += [Informer(api, kind, "", self._on_storage(kind), stop) for kind in STORAGE_KINDS]
        self._started = False

    # --- informer threads ---------------------------------------------------------------------------------

    def _deliver(
        self,
        what: str,
        kind: str,
        obj: dict[str, Any],
        convert: Callable[[dict[str, Any]], Any],
        *,
        key: str | None = None,
        label: str | None = None,
    ) -> None:
        """Convert in the informer's thread (the loop only applies records), then wake the loop. `key`: the
        record's key in the inbox (default: a node's name, else the object's uid); `label` names the object's
        kind in the log line of one that cannot be read (default: `what`)."""
        meta = obj["metadata"]
        if key is None:
            key = meta["name"] if what == "node" else meta["uid"]
        try:
            record = None if kind == "DELETED" else convert(obj)
        except Exception:
            log.exception("cannot read %s %s/%s; ignored", label or what, meta.get("namespace", ""), meta["name"])
            return
        self.inbox.put((what, key, record))
        self.wake.set()

    def _on_node(self, kind: str, obj: dict[str, Any]) -> None:
        self._deliver("node", kind, obj, node_facts)

    def _on_assigned(self, kind: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        mine = self.cache.assumed_pod(meta["uid"]) if kind != "DELETED" else None
        if mine and mine.node_name == obj["spec"].get("nodeName"):
            # Our own bind coming back: the loop only has to confirm it (and take its labels), not read it again.
            self.inbox.put(("confirm", meta["uid"], obj))
            return
        self._deliver("pod", kind, obj, pod_info)

    def _on_budget(self, kind: str, obj: dict[str, Any]) -> None:
        self._deliver("budget", kind, obj, budget)

    def _on_namespace(self, kind: str, obj: dict[str, Any]) -> None:
        self._deliver("namespace", kind, obj, lambda o: namespace_labels(o)[1], key=obj["metadata"]["name"])

    def _on_selector(self, what: str) -> Callable[[str, dict[str, Any]], None]:
        """The handler of one kind's informer (LIST items carry no `kind`)."""

        def handle(kind: str, obj: dict[str, Any]) -> None:
            meta = obj["metadata"]
            # (kind, namespace, name) as one string: namespaces and names never hold a "/"
            key = f"{what}/{meta.get('namespace', '')}/{meta['name']}"
            self._deliver("selector", kind, obj, lambda o: workload_selector(what, o)[1], key=key, label=what)

        return handle

    def _on_storage(self, what: str) -> Callable[[str, dict[str, Any]], None]:
        """The handler of a storage kind's informer: its compact record (cache.storage_record) to the loop."""

        def handle(kind: str, obj: dict[str, Any]) -> None:
            key = f"{what}/{storage_key(what, obj)}"  # kinds hold no "/"
            self._deliver("storage", kind, obj, functools.partial(storage_record, what), key=key, label=what)

        return handle

    def _on_pending(self, kind: str, obj: dict[str, Any]) -> None:
        if obj.get("spec", {}).get("schedulerName", "") in self.profiles or kind == "DELETED":
            self._deliver("pending", kind, obj, pending_pod)

    # --- the loop's thread --------------------------------------------------------------------------------

    def start(self, clock: Callable[[], float]) -> None:
        """Start the informers once and wait for their first LIST: the cache is complete only then. A lasting
        error (a 403: the ClusterRole is missing) is raised, so the cycle reports it, instead of waiting."""
        if not self._started:
            self._started = True
            for informer in self.informers:
                informer.start()
        deadline = clock() + SYNC_TIMEOUT_SECONDS
        # Nodes, assigned pods and budgets; pending pods may stream in.
        for informer in (i for i in self.informers if i.handle != self._on_pending):
            while not informer.synced.wait(0.05):
                if informer.error is not None and not is_transient(informer.error):
                    raise RuntimeError(f"cannot list {informer.kind}s: {describe(informer.error)}")
                if self.stop.is_set() or clock() > deadline:
                    raise TimeoutError(f"the first LIST of {informer.kind}s did not finish")

    def apply(self, pending: Callable[[PendingPod], None], not_pending: Callable[[str], None]) -> set[ClusterEvent]:
        """Apply what the informers handed over to the cache; a pending pod listed or watched goes to `pending`,
        one bound (by anyone) or deleted to `not_pending`. Returns the cluster events seen (each could help
        unschedulable pods)."""
        events: set[ClusterEvent] = set()
        while True:
            try:
                what, key, record = self.inbox.get_nowait()
            except Empty:
                break
            if what == "confirm":
                not_pending(key)
                if self.cache.confirm(key, record["spec"]["nodeName"], record["metadata"].get("labels") or {}):
                    continue
                # Not ours to confirm after all (forgotten, or confirmed already): read it now, in its place
                # among the events, as any other assigned pod.
                what, record = "pod", pod_info(record)
            if what == "namespace":
                self.cache.set_namespace(key, record)
            elif what == "storage":
                kind, name = key.split("/", 1)
                self.cache.set_storage(kind, name, record)
                events.add(ClusterEvent.STORAGE_CHANGED)
            elif what == "selector":
                what, namespace, name = key.split("/", 2)
                self.cache.set_selector((what, namespace, name), record)
            elif what == "node":
                if record is None:
                    self.cache.remove_node(key)
                elif self.cache.set_node(record):
                    events.add(ClusterEvent.NODE_CHANGED)
            elif what == "pod":
                if record is None:
                    if self.cache.remove_pod(key):
                        events.add(ClusterEvent.POD_REMOVED)
                    continue
                not_pending(key)  # bound by anyone
                change = self.cache.add_pod(record)
                if change != "confirmed":
                    events.add(ClusterEvent.POD_ADDED if change == "added" else ClusterEvent.POD_REMOVED)
            elif what == "budget":
                self.cache.set_budget(key, record)
            elif record is None:
                not_pending(key)
            elif not self.cache.has_pod(key):  # not one we already bound (the pending watch may lag)
                pending(record)
        return events

    def close(self) -> None:
        for informer in self.informers:
            informer.close()
