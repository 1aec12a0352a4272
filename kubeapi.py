"""Everything my-scheduler says to the Kubernetes API: list, watch, bind, events, the PodScheduled condition.

Lists and watches are read as raw JSON (`_preload_content=False`): the client's models cost several times
`json.loads`, and the scheduler keeps compact records of what it reads (cache.py), not models.
"""

from __future__ import annotations

import datetime
import enum
import functools
import http.client
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from queue import Queue
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlencode

import urllib3
from kubernetes import client, config
from kubernetes.client import ApiClient, V1Node, V1ObjectMeta, V1Pod
from kubernetes.client.exceptions import ApiException
from tenacity import RetryCallState, retry, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from connections import Connections, usable
from observability import API_RETRIES

if TYPE_CHECKING:
    from kubernetes.client import CoreV1Api

log = logging.getLogger("my-scheduler")

_T = TypeVar("_T")

ACTIVE_PHASES = "status.phase!=Succeeded,status.phase!=Failed"
ASSIGNED = f"spec.nodeName!=,{ACTIVE_PHASES}"  # the pods that make up the nodes' load
PATHS = {  # what the informers LIST and WATCH
    "Node": "/api/v1/nodes",
    "Pod": "/api/v1/pods",
    "PodDisruptionBudget": "/apis/policy/v1/poddisruptionbudgets",
    "Namespace": "/api/v1/namespaces",
    "Service": "/api/v1/services",
    "ReplicationController": "/api/v1/replicationcontrollers",
    "ReplicaSet": "/apis/apps/v1/replicasets",
    "StatefulSet": "/apis/apps/v1/statefulsets",
    # What the volume filters read (policies/volumes.py).
    "PersistentVolumeClaim": "/api/v1/persistentvolumeclaims",
    "PersistentVolume": "/api/v1/persistentvolumes",
    "StorageClass": "/apis/storage.k8s.io/v1/storageclasses",
    "CSINode": "/apis/storage.k8s.io/v1/csinodes",
}


def pending_selector(scheduler_names: Iterable[str]) -> str:
    """Pods not yet on a node and not finished; the server filters on the scheduler name too when it is one
    (a field selector cannot OR several names: then the caller filters)."""
    names = sorted(set(scheduler_names))
    selector = f"spec.nodeName=,{ACTIVE_PHASES}"
    return selector + (f",spec.schedulerName={names[0]}" if len(names) == 1 else "")


RETRY_ATTEMPTS = 8  # ~13 s of backoff: enough to ride out an API server restart
EVENT_ATTEMPTS = 12  # client-go's maxTriesPerEvent: a lost event cannot be recovered by the queue, a bind can
RETRY_CAP_SECONDS = 8.0


def is_transient(error: BaseException) -> bool:
    """5xx, 429, timeouts and connection errors are worth retrying; other 4xx are answers."""
    if isinstance(error, ApiException):
        # Status 0: the client's wrapping of a connection dropped mid-request (e.g. during the TLS handshake).
        return error.status in (None, 0) or error.status == 429 or error.status >= 500
    # OSError: connection refused or reset, timeouts, TLS failures, name resolution (from http.client directly).
    return isinstance(error, (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError))


_backoff = wait_exponential_jitter(multiplier=0.1, max=RETRY_CAP_SECONDS, jitter=0.2)


def _wait(state: RetryCallState) -> float:
    """Exponential backoff with jitter, and at least the server's Retry-After when it sent one (429, some 5xx):
    waiting exactly Retry-After would send every throttled caller back in the same instant, to be throttled again."""
    error = state.outcome.exception() if state.outcome else None
    headers = getattr(error, "headers", None) or {}
    backoff = float(_backoff(state))
    try:
        return max(min(float(headers.get("Retry-After", 0)), RETRY_CAP_SECONDS), backoff)
    except ValueError:
        return backoff


def _retrying(attempts: int) -> Callable[[Callable[..., _T]], Callable[..., _T]]:
    """Retry transient errors `attempts` times with `_wait`, each retry logged and counted."""

    def log_retry(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        API_RETRIES.labels(getattr(state.fn, "__name__", "call")).inc()
        log.warning(
            "%s failed (attempt %d/%d), retrying: %s",
            getattr(state.fn, "__name__", "API call"),
            state.attempt_number,
            attempts,
            describe(error),
            extra={"attempt": state.attempt_number},
        )

    return retry(
        retry=retry_if_exception(is_transient),
        wait=_wait,
        stop=stop_after_attempt(attempts),
        before_sleep=log_retry,
        reraise=True,
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


transient_retry = _retrying(RETRY_ATTEMPTS)


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
    def of(cls, pod: V1Pod | PodRef) -> PodRef:
        if isinstance(pod, PodRef):
            return pod
        meta = pod.metadata or V1ObjectMeta()
        return cls(str(meta.namespace), str(meta.name), str(meta.uid))

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"

    def object_reference(self) -> dict[str, str]:
        return {"apiVersion": "v1", "kind": "Pod", "namespace": self.namespace, "name": self.name, "uid": self.uid}

    def path(self, subresource: str = "") -> str:
        return f"/api/v1/namespaces/{quote(self.namespace)}/pods/{quote(self.name)}" + (
            f"/{subresource}" if subresource else ""
        )


def read(response: Any) -> bytes:
    """The body of a `_preload_content=False` response, and its connection back to the pool: an unread
    response keeps its connection, so the next request pays for a new TLS handshake (measured: a fifth of
    the scheduler's CPU in a burst before this)."""
    try:
        return bytes(response.data)
    finally:
        response.release_conn()


ACTIONS = {"Scheduled": "Binding", "Preempted": "Preempting"}  # an event's action by reason; else "Scheduling"
TOKEN_SECONDS = 1.0  # how long a bearer token read from the client is reused
NOTE_LIMIT = 1024  # bytes: events.k8s.io validation refuses a longer note


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class Api:
    def __init__(self, api_client: ApiClient, component: str, instance: str) -> None:
        self.client = api_client
        self._configuration = api_client.configuration
        self._pool = api_client.rest_client.pool_manager
        self._connections = Connections(self._configuration) if usable(self._configuration) else None
        self._token: str | None = None
        self._token_until = 0.0  # monotonic seconds
        self.component = component
        self.instance = instance

    @functools.cached_property
    def core(self) -> CoreV1Api:
        """The generated client, for the rare reads below (and the tests), made on first use: importing it takes
        ~0.2 s, which the daemon's start need not pay."""
        from kubernetes.client import CoreV1Api

        return CoreV1Api(self.client)

    # --- reads ---------------------------------------------------------------------------------------

    @transient_retry
    def list_page(self, kind: str, field_selector: str, limit: int, token: str | None) -> dict[str, Any]:
        """One page of a LIST, as a dict (`items`, `metadata.continue`, `metadata.resourceVersion`); read like the
        writes below (an idle poll is one such request a second, so its client cost is the idle cost)."""
        query = {"limit": limit, **({"fieldSelector": field_selector} if field_selector else {})}
        query.update({"continue": token} if token else {})
        page: dict[str, Any] = json.loads(self._request("GET", PATHS[kind], query=query, timeout=60))
        return page

    def watch(self, kind: str, field_selector: str, version: str, seconds: int) -> urllib3.BaseHTTPResponse:
        """An open WATCH response from `version` (BOOKMARKs on); the caller reads its lines, then releases it."""
        query = {
            "watch": "true",
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": seconds,
            **({"fieldSelector": field_selector} if field_selector else {}),
        }
        return self._open("GET", PATHS[kind], query=query, timeout=seconds + 30)

    def pages(self, kind: str, field_selector: str, page_size: int = 500) -> Iterator[dict[str, Any]]:
        """A paged LIST (`limit`/`continue`), one page at a time: a page's dicts only live while it is handled.
        The last page's `metadata.resourceVersion` is the list's."""
        token = None
        while True:
            page = self.list_page(kind, field_selector, page_size, token)
            yield page
            token = page["metadata"].get("continue")
            if not token:
                return

    def pending_pods(self, scheduler_names: Iterable[str]) -> Iterator[list[dict[str, Any]]]:
        """Poll mode: the pending pods of these scheduler names, one page at a time."""
        names = set(scheduler_names)
        for page in self.pages("Pod", pending_selector(names)):
            yield [item for item in page["items"] if item["spec"].get("schedulerName") in names]

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
        path = ref.path("binding")
        body = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": ref.name, "namespace": ref.namespace, "uid": ref.uid},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        uncertain = False  # an attempt failed in a way that leaves unknown whether the server bound the pod

        def post_binding() -> None:
            nonlocal uncertain
            try:
                self._post(path, body)
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

    def event(self, pod: V1Pod | PodRef, type_: str, reason: str, message: str, related: PodRef | None = None) -> None:
        """An events.k8s.io/v1 Event as kube-scheduler's recorder makes it (client-go tools/events, makeEvent):
        `kubectl describe pod` and `kubectl events` show it (the core/v1 view: `message`, `involvedObject`,
        `reportingComponent`)."""
        ref = PodRef.of(pod)
        body = {
            "apiVersion": "events.k8s.io/v1",
            "kind": "Event",
            "metadata": {"name": f"{ref.name}.{time.time_ns():x}", "namespace": ref.namespace},
            "eventTime": now().strftime("%Y-%m-%dT%H:%M:%S.%fZ"),  # a MicroTime
            "reportingController": self.component,
            "reportingInstance": self.instance,
            "action": ACTIONS.get(reason, "Scheduling"),
            "reason": reason,
            "regarding": ref.object_reference(),
            **({"related": related.object_reference()} if related else {}),
            "note": message.encode()[:NOTE_LIMIT].decode(errors="ignore"),
            "type": type_,
        }
        self._post_event(f"/apis/events.k8s.io/v1/namespaces/{quote(ref.namespace)}/events", body)

    @_retrying(EVENT_ATTEMPTS)
    def _post_event(self, path: str, body: dict[str, Any]) -> None:
        """The name is fixed before the first attempt, so a retry after a lost answer is refused (409) instead
        of posting the same event twice."""
        try:
            self._post(path, body)
        except ApiException as e:
            if e.status != 409:
                raise

    def _post(self, path: str, body: dict[str, Any]) -> None:
        self._send("POST", path, body)

    def _send(
        self, method: str, path: str, body: dict[str, Any] | list[Any], content_type: str = "application/json"
    ) -> None:
        """A write with a JSON body (POST, PATCH, DELETE's options); the answer is read and dropped."""
        self._request(method, path, body=json.dumps(body).encode(), content_type=content_type)

    def _request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: bytes | None = None,
        timeout: int = 30,
        content_type: str = "application/json",
    ) -> bytes:
        """A request on this thread's kept-alive connection (connections.py) with the client's TLS settings and
        credentials, without building models or validating arguments: a binding and its event cost ~0.65 ms of
        client CPU (16 threads), against ~0.9 ms through urllib3's pool and more through the generated client.
        An error answer raises the client's ApiException, so retries and outcomes read it as before."""
        if self._connections is None:  # a configuration only urllib3 serves (a proxy, say)
            return read(self._open(method, path, query=query, body=body, timeout=timeout, content_type=content_type))
        target = path + (f"?{urlencode(query)}" if query else "")
        response = self._connections.request(method, target, body, self._headers(body, content_type), timeout)
        if not 200 <= response.status < 300:
            raise ApiException(http_resp=response)
        return response.data

    def _open(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: bytes | None = None,
        timeout: int = 30,
        content_type: str = "application/json",
    ) -> urllib3.BaseHTTPResponse:
        """A request through the client's urllib3 pool, its response before the body is read (a watch streams
        it)."""
        response = self._pool.request(
            method,
            self._configuration.host + path + (f"?{urlencode(query)}" if query else ""),
            body=body,
            headers=self._headers(body, content_type),
            timeout=urllib3.Timeout(connect=10, read=timeout),
            retries=False,
            preload_content=False,
        )
        if not 200 <= response.status < 300:
            error = ApiException(http_resp=response)  # reads the body
            response.release_conn()
            raise error
        return response

    def _headers(self, body: bytes | None, content_type: str) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": self.component}
        if body is not None:
            headers["Content-Type"] = content_type
        if token := self._authorization():
            headers["Authorization"] = token
        return headers

    def _authorization(self) -> str | None:
        """The bearer token, asked of the client at most once every TOKEN_SECONDS: the kubeconfig loader's
        refresh hook (which reloads an expired token) sets the configuration's host again on every call, and
        that reads every proxy variable of the environment: ~0.07 ms a request, a seventh of a bind's client CPU."""
        if (now := time.monotonic()) >= self._token_until:
            self._token = self._configuration.get_api_key_with_prefix("BearerToken", alias="authorization")
            self._token_until = now + TOKEN_SECONDS
        return self._token

    @transient_retry
    def mark_unschedulable(self, pod: V1Pod, message: str, nominated_node: str | None = None) -> None:
        """Set PodScheduled=False/Unschedulable through pods/status, as kube-scheduler does, and with it the node
        a preemption nominated (`status.nominatedNodeName`; "" clears it) when given."""
        ref = PodRef.of(pod)
        # The resourceVersion makes the patch conditional: a pod that changed since we judged it (bound by
        # a bind whose answer was lost, say) is not marked unschedulable from a stale view.
        version = pod.metadata.resource_version if pod.metadata else None
        status: dict[str, Any] = {"conditions": [condition("PodScheduled", "False", "Unschedulable", message)]}
        if nominated_node is not None:
            status["nominatedNodeName"] = nominated_node or None
        try:
            self._patch_status(ref, {"metadata": {"resourceVersion": version}, "status": status})
        except ApiException as e:
            if e.status != 409:
                raise
            log.debug("%s changed since it was judged; its condition is left to the next cycle", ref)

    @transient_retry
    def clear_nomination(self, pod: PodRef) -> None:
        """kube's clearNominatedNodeName: a lower-priority pod nominated to a node a preemptor takes over."""
        try:
            self._patch_status(pod, {"status": {"nominatedNodeName": None}})
        except ApiException as e:
            if e.status != 404:
                raise

    def preempt(self, victim: PodRef, preemptor: V1Pod, node: str) -> bool:
        """kube's preemption executor for one victim: the DisruptionTarget condition, then the deletion (with
        the victim's own grace period; its UID as a precondition), then the Preempted event. False when the
        victim was already gone."""
        by = PodRef.of(preemptor)
        scheduler = preemptor.spec.scheduler_name if preemptor.spec else self.component
        target = condition(
            "DisruptionTarget",
            "True",
            "PreemptionByScheduler",
            f"{scheduler}: preempting to accommodate a higher priority pod",
        )
        try:
            transient_retry(self._patch_status)(victim, {"status": {"conditions": [target]}})
            body = {"apiVersion": "v1", "kind": "DeleteOptions", "preconditions": {"uid": victim.uid}}
            transient_retry(self._send)("DELETE", victim.path(), body)
        except ApiException as e:
            if e.status not in (404, 409):  # 409: the precondition failed, a new pod of that name
                raise
            log.info("%s: already gone, not preempted", victim)
            return False
        log.info("Preempted %s on %s for %s", victim, node, by, extra={"pod": str(victim), "node": node})
        call_quietly(self.event, victim, "Normal", "Preempted", f"Preempted by pod {by.uid} on node {node}", by)
        return True

    @transient_retry
    def read_object(self, path: str) -> dict[str, Any]:
        """GET one object as JSON (the volume binder reads claims: volume_binder.py)."""
        obj: dict[str, Any] = json.loads(self._request("GET", path))
        return obj

    @transient_retry
    def patch_object(
        self, path: str, patch: dict[str, Any] | list[Any], content_type: str = "application/merge-patch+json"
    ) -> None:
        """PATCH one object (the volume binder's writes on volumes and claims: volume_binder.py)."""
        self._send("PATCH", path, patch, content_type)

    def _patch_status(self, pod: PodRef, patch: dict[str, Any]) -> None:
        self._send("PATCH", pod.path("status"), patch, "application/strategic-merge-patch+json")


def condition(type_: str, status: str, reason: str, message: str) -> dict[str, str]:
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": now().isoformat(),
    }


def condition_message(pod: V1Pod, type_: str = "PodScheduled") -> str | None:
    conditions = (pod.status.conditions if pod.status else None) or []
    return next((c.message for c in conditions if c.type == type_ and c.status == "False"), None)


def call_quietly(fn: Callable[..., _T], pod: V1Pod | PodRef, *args: Any) -> _T | None:
    """For best-effort writes about a pod (events, conditions): failure is logged, never raised."""
    try:
        return fn(pod, *args)
    except Exception as e:  # noqa: BLE001 — reporting must never break scheduling
        ref = PodRef.of(pod)
        log.warning("%s: %s failed: %s", ref, getattr(fn, "__name__", "call"), describe(e))
        return None


class Reporter:
    """The threads that post FailedScheduling events, PodScheduled conditions and preemption's writes, so that
    they never wait behind binds. At most `backlog` reports wait for a thread (a caller waits beyond that): a
    crash loses no more than those and the ones being posted. `close` posts everything submitted before
    returning. A report that raises is logged."""

    def __init__(self, threads: int, backlog: int) -> None:
        self._waiting: Queue[tuple[Callable[..., object], tuple[Any, ...]] | None] = Queue(maxsize=backlog)
        self._threads = [threading.Thread(target=self._run, name=f"report-{i}", daemon=True) for i in range(threads)]
        for thread in self._threads:
            thread.start()

    def submit(self, fn: Callable[..., object], *args: Any) -> None:
        self._waiting.put((fn, args))

    def _run(self) -> None:
        while (report := self._waiting.get()) is not None:
            fn, args = report
            try:
                fn(*args)
            except Exception:
                log.exception("%s failed", getattr(fn, "__name__", "a report"))

    def close(self) -> None:
        for _ in self._threads:
            self._waiting.put(None)
        for thread in self._threads:
            thread.join()


def report_bound(api: Api, pod: V1Pod, node: str) -> None:
    """What a bind reports, from the daemon and the bind command alike: the user's `Bound ns/pod -> node` line
    and kube-scheduler's Scheduled event (best effort)."""
    key = str(PodRef.of(pod))
    log.info("Bound %s -> %s", key, node, extra={"pod": key, "node": node, "result": "bound"})
    call_quietly(api.event, pod, "Normal", "Scheduled", f"Successfully assigned {key} to {node}")
