"""Everything my-scheduler says to the Kubernetes API: list, bind, events, the PodScheduled condition.

Lists are read as raw JSON and turned into models only for objects that changed since the last read
(keyed by uid and resourceVersion): the client's model deserialisation costs ~30x `json.loads`, and in a
steady cluster almost nothing changes between two cycles.
"""

from __future__ import annotations

import datetime
import enum
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import urllib3
from kubernetes import client, config
from kubernetes.client import (
    ApiClient,
    CoreV1Api,
    CoreV1Event,
    V1Binding,
    V1EventSource,
    V1Node,
    V1ObjectMeta,
    V1ObjectReference,
    V1Pod,
)
from kubernetes.client.exceptions import ApiException
from tenacity import RetryCallState, retry, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from observability import API_RETRIES

log = logging.getLogger("my-scheduler")

_T = TypeVar("_T")
_Model = TypeVar("_Model", V1Pod, V1Node)

ACTIVE_PHASES = "status.phase!=Succeeded,status.phase!=Failed"


def pending_selector(scheduler_names: Iterable[str]) -> str:
    """Pods not yet on a node and not finished; the server filters on the scheduler name too when it is one
    (a field selector cannot OR several names: then the caller filters)."""
    names = sorted(set(scheduler_names))
    selector = f"spec.nodeName=,{ACTIVE_PHASES}"
    return selector + (f",spec.schedulerName={names[0]}" if len(names) == 1 else "")


RETRY_ATTEMPTS = 8  # ~13 s of backoff: enough to ride out an API server restart
RETRY_CAP_SECONDS = 8.0


def is_transient(error: BaseException) -> bool:
    """5xx, 429, timeouts and connection errors are worth retrying; other 4xx are answers."""
    if isinstance(error, ApiException):
        # Status 0: the client's wrapping of a connection dropped mid-request (e.g. during the TLS handshake).
        return error.status in (None, 0) or error.status == 429 or error.status >= 500
    return isinstance(error, (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError))


_backoff = wait_exponential_jitter(multiplier=0.1, max=RETRY_CAP_SECONDS, jitter=0.2)


def _wait(state: RetryCallState) -> float:
    """Exponential backoff with jitter, or the server's Retry-After when it sent one (429, some 5xx)."""
    error = state.outcome.exception() if state.outcome else None
    headers = getattr(error, "headers", None) or {}
    retry_after = headers.get("Retry-After")
    if retry_after is not None:
        try:
            return min(float(retry_after), RETRY_CAP_SECONDS)
        except ValueError:
            pass
    return float(_backoff(state))


def _log_retry(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    API_RETRIES.labels(getattr(state.fn, "__name__", "call")).inc()
    log.warning(
        "%s failed (attempt %d/%d), retrying: %s",
        getattr(state.fn, "__name__", "API call"),
        state.attempt_number,
        RETRY_ATTEMPTS,
        describe(error),
        extra={"attempt": state.attempt_number},
    )


def describe(error: BaseException | None) -> str:
    if isinstance(error, ApiException):
        return f"HTTP {error.status} {error.reason}: {_status_message(error)}"
    return repr(error)


def _status_message(error: ApiException) -> str:
    try:
        return str(json.loads(error.body or "{}").get("message", error.body))
    except ValueError:
        return str(error.body)


transient_retry = retry(
    retry=retry_if_exception(is_transient),
    wait=_wait,
    stop=stop_after_attempt(RETRY_ATTEMPTS),
    before_sleep=_log_retry,
    reraise=True,
)


class BindResult(enum.Enum):
    BOUND = "bound"
    ALREADY_BOUND = "already bound"  # 409: someone else bound it first: done, not an error
    GONE = "gone"  # 404, or a new pod with the same name (UID precondition failed)
    FORBIDDEN = "forbidden"


def load_client(kubeconfig: str | None, qps_pool: int = 16) -> ApiClient:
    """In-cluster config inside a pod, else the kubeconfig (flag, KUBECONFIG, ~/.kube/config)."""
    configuration = client.Configuration()
    if kubeconfig is None and config.incluster_config.SERVICE_HOST_ENV_NAME in os.environ:
        config.load_incluster_config(client_configuration=configuration)
    else:
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
    configuration.connection_pool_maxsize = qps_pool
    # Retries are ours (tenacity, logged); urllib3's silent ones would multiply them.
    configuration.retries = False
    return ApiClient(configuration)


@dataclass(frozen=True, slots=True)
class PodRef:
    """Who a pod is. Objects read from the API server always carry these; the client's models type them
    optional, so they are read once, here."""

    namespace: str
    name: str
    uid: str

    @classmethod
    def of(cls, pod: V1Pod) -> PodRef:
        meta = pod.metadata or V1ObjectMeta()
        return cls(str(meta.namespace), str(meta.name), str(meta.uid))

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


def read(response: Any) -> bytes:
    """The body of a `_preload_content=False` response, and its connection back to the pool: an unread
    response keeps its connection, so the next request pays for a new TLS handshake (measured: a fifth of
    the scheduler's CPU in a burst before this)."""
    try:
        return bytes(response.data)
    finally:
        response.release_conn()


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class Api:
    def __init__(self, api_client: ApiClient, component: str, instance: str) -> None:
        self.core = CoreV1Api(api_client)
        self.component = component
        self.instance = instance
        self._cache: dict[str, dict[str, tuple[str, Any]]] = {}

    # --- reads ---------------------------------------------------------------------------------------

    def list_method(self, kind: str) -> Callable[..., Any]:
        return self.core.list_node if kind == "Node" else self.core.list_pod_for_all_namespaces

    @transient_retry
    def _list(self, kind: str, **kwargs: Any) -> list[dict[str, Any]]:
        response = self.list_method(kind)(_preload_content=False, _request_timeout=60, **kwargs)
        items: list[dict[str, Any]] = json.loads(read(response))["items"]
        return items

    def _models(self, list_name: str, items: Iterable[dict[str, Any]], model: type[_Model]) -> list[_Model]:
        """Models for the listed items, reusing the ones whose resourceVersion did not change."""
        previous = self._cache.get(list_name, {})
        current: dict[str, tuple[str, Any]] = {}
        for item in items:
            meta = item["metadata"]
            version = meta.get("resourceVersion", "")
            cached = previous.get(meta["uid"])
            current[meta["uid"]] = (version, cached[1] if cached and cached[0] == version else model.from_dict(item))
        self._cache[list_name] = current
        return [obj for _, obj in current.values()]

    def pending_pods(self, scheduler_names: Iterable[str]) -> list[V1Pod]:
        names = set(scheduler_names)
        listed = self._list("Pod", field_selector=pending_selector(names))
        items = [i for i in listed if i["spec"].get("schedulerName") in names]
        return self._models("pending", items, V1Pod)

    def nodes(self) -> list[V1Node]:
        return self._models("nodes", self._list("Node"), V1Node)

    def assigned_pods(self) -> list[V1Pod]:
        return self._models("assigned", self._list("Pod", field_selector=f"spec.nodeName!=,{ACTIVE_PHASES}"), V1Pod)

    @transient_retry
    def read_pod(self, namespace: str, name: str) -> V1Pod:
        return self.core.read_namespaced_pod(name, namespace)

    @transient_retry
    def read_node(self, name: str) -> V1Node:
        return self.core.read_node(name)

    # --- writes --------------------------------------------------------------------------------------

    def bind(self, pod: V1Pod, node: str) -> tuple[BindResult, str]:
        """POST a Binding with the pod's UID, so a re-created pod of the same name is never bound by mistake.

        The response is read raw: the server answers with a Status, which older clients failed to parse as a
        V1Binding *after* the binding had succeeded (kubernetes-client/python #547, #825).
        """
        ref = PodRef.of(pod)
        body = V1Binding(
            metadata=V1ObjectMeta(name=ref.name, namespace=ref.namespace, uid=ref.uid),
            target=V1ObjectReference(api_version="v1", kind="Node", name=node),
        )
        uncertain = False  # an attempt failed in a way that leaves unknown whether the server bound the pod

        def post_binding() -> None:
            nonlocal uncertain
            try:
                read(
                    self.core.create_namespaced_pod_binding(
                        ref.name, ref.namespace, body, _preload_content=False, _request_timeout=30
                    )
                )
            except Exception as e:
                uncertain = uncertain or is_transient(e)
                raise

        try:
            transient_retry(post_binding)()
        except ApiException as e:
            message = _status_message(e)
            if e.status == 409 and "already assigned" in message:
                # After an attempt whose answer was lost (the API server died mid-request), the pod may be
                # on our node by our own hand: then it is ours to report.
                if uncertain and self._bound_to(ref, node):
                    return BindResult.BOUND, ""
                return BindResult.ALREADY_BOUND, message
            if e.status in {404, 409}:
                return BindResult.GONE, message
            if e.status == 403:
                return BindResult.FORBIDDEN, message
            raise
        return BindResult.BOUND, ""

    def _bound_to(self, ref: PodRef, node: str) -> bool:
        pod = self.read_pod(ref.namespace, ref.name)
        return PodRef.of(pod).uid == ref.uid and pod.spec is not None and pod.spec.node_name == node

    def event(self, pod: V1Pod, type_: str, reason: str, message: str) -> None:
        """A core/v1 Event as kube-scheduler reports it (`kubectl describe pod` and `kubectl events` show it)."""
        ref = PodRef.of(pod)
        stamp = now()
        body = CoreV1Event(
            metadata=V1ObjectMeta(name=f"{ref.name}.{time.time_ns():x}", namespace=ref.namespace),
            involved_object=V1ObjectReference(
                api_version="v1", kind="Pod", namespace=ref.namespace, name=ref.name, uid=ref.uid
            ),
            type=type_,
            reason=reason,
            message=message[:1024],
            source=V1EventSource(component=self.component),
            reporting_component=self.component,
            reporting_instance=self.instance,
            action="Binding" if reason == "Scheduled" else "Scheduling",
            first_timestamp=stamp,
            last_timestamp=stamp,
            count=1,
        )
        self._post_event(ref.namespace, body)

    @transient_retry
    def _post_event(self, namespace: str, body: CoreV1Event) -> None:
        """The name is fixed before the first attempt, so a retry after a lost answer is refused (409) instead
        of posting the same event twice."""
        try:
            read(self.core.create_namespaced_event(namespace, body, _preload_content=False, _request_timeout=30))
        except ApiException as e:
            if e.status != 409:
                raise

    @transient_retry
    def mark_unschedulable(self, pod: V1Pod, message: str) -> None:
        """Set PodScheduled=False/Unschedulable through pods/status, as kube-scheduler does."""
        condition = {
            "type": "PodScheduled",
            "status": "False",
            "reason": "Unschedulable",
            "message": message,
            "lastTransitionTime": now().isoformat(),
        }
        ref = PodRef.of(pod)
        # The resourceVersion makes the patch conditional: a pod that changed since we judged it (bound by
        # a bind whose answer was lost, say) is not marked unschedulable from a stale view.
        version = pod.metadata.resource_version if pod.metadata else None
        body = {"metadata": {"resourceVersion": version}, "status": {"conditions": [condition]}}
        try:
            read(
                self.core.patch_namespaced_pod_status(
                    ref.name,
                    ref.namespace,
                    body,
                    _content_type="application/strategic-merge-patch+json",
                    _preload_content=False,
                    _request_timeout=30,
                )
            )
        except ApiException as e:
            if e.status != 409:
                raise
            log.debug("%s changed since it was judged; its condition is left to the next cycle", ref)


def condition_message(pod: V1Pod, type_: str = "PodScheduled") -> str | None:
    conditions = (pod.status.conditions if pod.status else None) or []
    return next((c.message for c in conditions if c.type == type_ and c.status == "False"), None)


def call_quietly(fn: Callable[..., _T], pod: V1Pod, *args: Any) -> _T | None:
    """For best-effort writes about a pod (events, conditions): failure is logged, never raised."""
    try:
        return fn(pod, *args)
    except Exception as e:  # noqa: BLE001 — reporting must never break scheduling
        log.warning("%s: %s failed: %s", PodRef.of(pod), getattr(fn, "__name__", "call"), describe(e))
        return None


class Watcher:
    """Sets `wake` whenever pending pods or nodes change: watch mode's trigger. It never decides anything;
    the loop's next cycle lists what is pending as usual, so a missed or coalesced event costs latency only."""

    WATCH_SECONDS = 300

    def __init__(self, api: Api, scheduler_names: Iterable[str], wake: threading.Event, stop: threading.Event) -> None:
        self.api, self.wake, self.stop = api, wake, stop
        self.pod_selector = pending_selector(scheduler_names)

    def start(self) -> None:
        for kind in ("Pod", "Node"):
            threading.Thread(target=self._watch_forever, args=(kind,), name=f"watch-{kind}", daemon=True).start()

    def _watch_forever(self, kind: str) -> None:
        version: str | None = None
        while not self.stop.is_set():
            try:
                version = version or self._current_version(kind)
                version = self._watch(kind, version)
            except Exception as e:  # noqa: BLE001 — the safety-net resync covers whatever is missed meanwhile
                log.debug("watch %s: %s; re-listing", kind, e)
                version = None
                self.wake.set()
                self.stop.wait(1.0)

    def _selector(self, kind: str) -> dict[str, str]:
        return {} if kind == "Node" else {"field_selector": self.pod_selector}

    def _current_version(self, kind: str) -> str:
        response = self.api.list_method(kind)(
            limit=1, _preload_content=False, _request_timeout=30, **self._selector(kind)
        )
        return str(json.loads(read(response))["metadata"]["resourceVersion"])

    def _watch(self, kind: str, version: str) -> str | None:
        """Follow one watch request; return the version to resume from, or None to re-list (410 Gone)."""
        response: Any = self.api.list_method(kind)(
            watch=True,
            resource_version=version,
            allow_watch_bookmarks=True,
            timeout_seconds=self.WATCH_SECONDS,
            _preload_content=False,
            _request_timeout=(10, self.WATCH_SECONDS + 30),
            **self._selector(kind),
        )
        buffer = b""
        try:
            for chunk in response.stream(65536):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    if event["type"] == "ERROR":
                        return None  # typically 410 Gone: our resourceVersion is too old
                    version = event["object"]["metadata"]["resourceVersion"]
                    # A pod leaving the pending set (bound, deleted) brings nothing new to schedule; a node
                    # going away neither. Our own binds would otherwise wake an empty cycle each.
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self.wake.set()
                if self.stop.is_set():
                    break
        finally:
            response.release_conn()
        return version
