"""LIST + WATCH of one kind of object, as raw JSON: client-go's reflector, kept minimal.

A paged LIST (`limit`/`continue`) first, then one WATCH after another from the last resourceVersion (BOOKMARKs
keep it fresh while nothing changes); a new LIST only after 410 Gone. A broken watch (the API server restarted,
a timeout) resumes from where it was. Each object is handed to `handle(type, object)` as a dict: the caller keeps
only what it needs of it. A re-LIST hands over only what changed, and DELETED for what is gone.

Why not the client's `kubernetes.informer.SharedInformer`: it builds a client model for every object and event
(measured here: `V1Pod.from_dict` costs ~5x `json.loads` and holds ~2x the memory of the dict, itself ~10x the
compact record the scheduler keeps), and it has no hook to keep less.
"""

from __future__ import annotations

import functools
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from cache import (
    SELECTOR_KINDS,
    STORAGE_KINDS,
    ClusterCache,
    budget,
    namespace_labels,
    node_facts,
    pod_info,
    storage_key,
    storage_record,
    workload_selector,
)
from kubeapi import ASSIGNED, Api, describe

log = logging.getLogger("my-scheduler")

Handler = Callable[[str, dict[str, Any]], object]  # ("ADDED" | "MODIFIED" | "DELETED", object)

PAGE_SIZE = 500  # client-go's pager default
WATCH_SECONDS = 300
RETRY_MAX_SECONDS = 30.0


class Gone(Exception):
    """410: the resourceVersion is too old to watch from; LIST again."""


class Informer:
    """Owns its thread and the resourceVersion of every object it has handed over (to diff a re-LIST)."""

    def __init__(self, api: Api, kind: str, field_selector: str, handle: Handler, stop: threading.Event) -> None:
        self.api, self.kind, self.field_selector, self.handle, self.stop = api, kind, field_selector, handle, stop
        self.synced = threading.Event()  # the first LIST has been handed over
        self.error: BaseException | None = None  # the last failure, until a LIST or WATCH works again
        self._versions: dict[str, tuple[str, str, str]] = {}  # uid → (resourceVersion, namespace, name)
        self._response: Any = None
        self._thread = threading.Thread(target=self._run, name=f"informer-{kind}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Ends the watch in flight at once and waits for the thread (set `stop` first): a thread still inside
        an SSL read when the interpreter exits makes it abort."""
        response = self._response
        if response is not None:
            response.shutdown()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        version: str | None = None
        delay = 0.5
        while not self.stop.is_set():
            try:
                if version is None:
                    version = self.list()
                version = self._watch(version)
                delay = 0.5
            except Gone:
                version = None
            except Exception as e:  # noqa: BLE001 — the thread must outlive any error; the watch resumes
                if self.stop.is_set():
                    break
                self.error = e
                # WARNING, not DEBUG: a lasting 403 (RBAC) must be visible to an operator.
                log.warning("watch %s failed, resuming in %.1f s: %s", self.kind, delay, describe(e))
                self.stop.wait(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)

    def list(self) -> str:
        """One paged LIST: hand over what is new or changed and DELETED for what is gone; returns the
        resourceVersion to watch from."""
        seen: dict[str, tuple[str, str, str]] = {}
        version = ""
        try:
            for page in self.api.pages(self.kind, self.field_selector, PAGE_SIZE):
                version = page["metadata"]["resourceVersion"]
                for item in page["items"]:
                    meta = item["metadata"]
                    seen[meta["uid"]] = known = (meta["resourceVersion"], meta.get("namespace", ""), meta["name"])
                    previous = self._versions.get(meta["uid"])
                    if previous is None or previous[0] != known[0]:
                        self.handle("MODIFIED" if previous else "ADDED", item)
        except ApiException as e:
            if e.status == 410:  # the continue token expired: start over
                raise Gone from e
            raise
        for uid in self._versions.keys() - seen.keys():
            _, namespace, name = self._versions[uid]
            self.handle("DELETED", {"metadata": {"uid": uid, "namespace": namespace, "name": name}})
        self._versions = seen
        self.error = None
        log.debug("listed %d %ss (%s); watching", len(seen), self.kind, self.field_selector or "all")
        self.synced.set()
        return str(version)

    def _watch(self, version: str) -> str:
        """Follow one watch request until the server ends it; returns the version to resume from."""
        self._response = response = self.api.watch(self.kind, self.field_selector, version, WATCH_SECONDS)
        try:
            if self.stop.is_set():  # closed while the request was on its way: close() did not see it
                return version
            for line in iter_resp_lines(response):
                if not line:
                    continue
                event = json.loads(line)
                kind, obj = event["type"], event["object"]
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise Gone(obj.get("message", ""))
                    raise ApiException(status=obj.get("code"), reason=obj.get("message"))
                meta = obj["metadata"]
                version = meta["resourceVersion"]
                if kind == "BOOKMARK":
                    continue
                if kind == "DELETED":
                    self._versions.pop(meta["uid"], None)
                else:
                    self._versions[meta["uid"]] = (version, meta.get("namespace", ""), meta["name"])
                self.handle(kind, obj)
                if self.stop.is_set():
                    break
        finally:
            self._response = None
            response.release_conn()
        return version


def _set_selector(cache: ClusterCache, kind: str, _: str, obj: dict[str, Any]) -> None:
    cache.set_selector(*workload_selector(kind, obj))


def _set_storage(cache: ClusterCache, kind: str, _: str, obj: dict[str, Any]) -> None:
    cache.set_storage(kind, storage_key(kind, obj), storage_record(kind, obj))


def list_cluster(api: Api, clock: Callable[[], float], *, budgets: bool = False) -> ClusterCache:
    """The cluster read once (nodes, assigned pods, namespaces, Services' and controllers' selectors, the volume
    filters' storage objects and, with
    `budgets`, PodDisruptionBudgets) through the daemon's own informer and cache code: for `explain`, `bind` and
    the tests that compare the daemon's cache with a fresh LIST."""
    cache, stop = ClusterCache(clock), threading.Event()
    Informer(api, "Node", "", lambda _, obj: cache.set_node(node_facts(obj)), stop).list()
    Informer(api, "Pod", ASSIGNED, lambda _, obj: cache.add_pod(pod_info(obj)), stop).list()
    Informer(api, "Namespace", "", lambda _, obj: cache.set_namespace(*namespace_labels(obj)), stop).list()
    for kind in SELECTOR_KINDS:
        Informer(api, kind, "", functools.partial(_set_selector, cache, kind), stop).list()
    for kind in STORAGE_KINDS:
        Informer(api, kind, "", functools.partial(_set_storage, cache, kind), stop).list()
    if budgets:
        Informer(
            api, "PodDisruptionBudget", "", lambda _, obj: cache.set_budget(obj["metadata"]["uid"], budget(obj)), stop
        ).list()
    return cache
