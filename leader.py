"""Leader election on a coordination.k8s.io/v1 Lease, with client-go's rules and kube-scheduler's timings.

The client ships `kubernetes.leaderelection`, but it runs its own blocking loop and exits the callback when
leadership is lost; we need a flag the scheduling loop can check before every cycle and every bind, and a
release on SIGTERM so a standby takes over at once — a few lines of Lease get/create/update do that.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from kubernetes.client import ApiClient, CoordinationV1Api, V1Lease, V1LeaseSpec, V1ObjectMeta
from kubernetes.client.exceptions import ApiException

from kubeapi import describe, read

log = logging.getLogger("my-scheduler")


class LeaseElector:
    def __init__(
        self,
        api_client: ApiClient,
        namespace: str,
        name: str,
        identity: str,
        *,
        lease_duration: float = 15.0,
        renew_deadline: float = 10.0,
        retry_period: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[bool], None] = lambda leading: None,
    ) -> None:
        self.api = CoordinationV1Api(api_client)
        self.namespace, self.name, self.identity = namespace, name, identity
        self.lease_duration, self.renew_deadline, self.retry_period = lease_duration, renew_deadline, retry_period
        self.clock = clock
        self.on_change = on_change
        self._renewed_at: float | None = None  # when we last renewed our own lease (local clock)
        # client-go judges another holder's lease by when *we* saw its record change, not by its timestamps,
        # so clock skew between replicas does not matter.
        self._observed: tuple[str, float] | None = None
        self._standing_by_for: str | None = None  # the other holder last logged, so each is logged once
        self._lock = threading.Lock()

    def is_leader(self) -> bool:
        with self._lock:
            return self._renewed_at is not None and self.clock() - self._renewed_at < self.renew_deadline

    def run(self, stop: threading.Event) -> None:
        """Try to acquire or renew every retry period until `stop`. Releasing is the caller's move, once its
        work in flight is done: a release before that would let a standby bind beside our last binds."""
        while not stop.is_set():
            was_leader = self.is_leader()
            try:
                self.try_acquire_or_renew()
            except Exception as e:  # noqa: BLE001 — the API may be down; leadership lapses after renew_deadline
                log.warning("lease %s/%s: %s", self.namespace, self.name, describe(e))
            leader = self.is_leader()
            if leader != was_leader:
                log.info("%s leadership of lease %s/%s", "acquired" if leader else "lost", self.namespace, self.name)
                self.on_change(leader)
            stop.wait(self.retry_period)

    def try_acquire_or_renew(self) -> bool:
        now = datetime.datetime.now(datetime.UTC)
        started = self.clock()
        try:
            lease: Any = self.api.read_namespaced_lease(self.name, self.namespace)
        except ApiException as e:
            if e.status != 404:
                raise
            body = V1Lease(
                metadata=V1ObjectMeta(name=self.name, namespace=self.namespace), spec=self._spec(now, 0, now)
            )
            try:
                read(self.api.create_namespaced_lease(self.namespace, body, _preload_content=False))
            except ApiException as create_error:
                if create_error.status == 409:  # another replica created it first
                    return False
                raise
            return self._renewed(started)
        spec = lease.spec
        holder = spec.holder_identity or ""
        version = lease.metadata.resource_version
        if self._observed is None or self._observed[0] != version:
            self._observed = (version, started)
        if holder and holder != self.identity:
            valid_until = self._observed[1] + (spec.lease_duration_seconds or self.lease_duration)
            if started < valid_until:
                if holder != self._standing_by_for:  # as client-go's "attempting to acquire leader lease": once
                    log.info("lease %s/%s is held by %s; standing by", self.namespace, self.name, holder)
                    self._standing_by_for = holder
                return False
        transitions = (spec.lease_transitions or 0) + (0 if holder == self.identity else 1)
        acquired = (spec.acquire_time or now) if holder == self.identity else now
        body = V1Lease(metadata=self._meta(version), spec=self._spec(now, transitions, acquired))
        try:
            read(self.api.replace_namespaced_lease(self.name, self.namespace, body, _preload_content=False))
        except ApiException as e:
            if e.status == 409:  # someone updated it between our read and write
                return False
            raise
        return self._renewed(started)

    def _spec(self, now: datetime.datetime, transitions: int, acquired: datetime.datetime) -> V1LeaseSpec:
        return V1LeaseSpec(
            holder_identity=self.identity,
            lease_duration_seconds=round(self.lease_duration),
            acquire_time=acquired,
            renew_time=now,
            lease_transitions=transitions,
        )

    def _meta(self, resource_version: str) -> V1ObjectMeta:
        return V1ObjectMeta(name=self.name, namespace=self.namespace, resource_version=resource_version)

    def _renewed(self, at: float) -> bool:
        with self._lock:
            self._renewed_at = at
        return True

    def release(self) -> None:
        """Give the lease up (empty holder, 1 s duration), as client-go's ReleaseOnCancel does."""
        with self._lock:
            if self._renewed_at is None:
                return
            self._renewed_at = None
        try:
            lease: Any = self.api.read_namespaced_lease(self.name, self.namespace)
            if lease.spec.holder_identity != self.identity:
                return
            now = datetime.datetime.now(datetime.UTC)
            # An empty holder and a 1 s duration: standbys take over at their next retry.
            spec = self._spec(now, lease.spec.lease_transitions or 0, now).model_copy(
                update={"holder_identity": None, "lease_duration_seconds": 1}
            )
            body = V1Lease(metadata=self._meta(lease.metadata.resource_version), spec=spec)
            read(self.api.replace_namespaced_lease(self.name, self.namespace, body, _preload_content=False))
            log.info("released lease %s/%s", self.namespace, self.name)
        except Exception as e:  # noqa: BLE001 — the lease expires on its own anyway
            log.warning("releasing lease %s/%s failed: %s", self.namespace, self.name, describe(e))
