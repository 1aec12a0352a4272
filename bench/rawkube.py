"""A thin raw HTTP client for the benchmark harness and raw_limit.py: urllib3 with the kubeconfig's server,
CA and credentials, JSON bytes in and out. No models, so the harness spends as little CPU as it can while a
contender is measured on the same two cores."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote, urlencode

import urllib3
from kubernetes import client, config

TRANSIENT = {429, 500, 502, 503, 504}


class ApiError(Exception):
    def __init__(self, method: str, path: str, status: int, body: bytes) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {body[:300]!r}")
        self.status = status
        self.body = body


class RawKube:
    def __init__(self, kubeconfig: str, pool_size: int = 16) -> None:
        configuration = client.Configuration()
        config.load_kube_config(config_file=kubeconfig, client_configuration=configuration)
        self.server = configuration.host.rstrip("/")
        self.headers = {"Accept": "application/json", "Content-Type": "application/json"}
        for name, value in (configuration.api_key or {}).items():
            prefix = (configuration.api_key_prefix or {}).get(name)
            self.headers["Authorization"] = f"{prefix} {value}" if prefix else value
        self.pool = urllib3.PoolManager(
            num_pools=2,
            maxsize=pool_size,
            block=True,
            cert_reqs="CERT_REQUIRED" if configuration.verify_ssl else "CERT_NONE",
            ca_certs=configuration.ssl_ca_cert,
            cert_file=configuration.cert_file,
            key_file=configuration.key_file,
            retries=False,
        )

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        *,
        query: dict[str, Any] | None = None,
        timeout: float = 60.0,
        attempts: int = 5,
    ) -> bytes:
        """One call; 429/5xx and connection errors are retried a few times (the harness's own calls must not
        fail a run), other errors raise ApiError."""
        url = self.server + path + (f"?{urlencode(query)}" if query else "")
        for attempt in range(1, attempts + 1):
            try:
                response = self.pool.request(method, url, body=body, headers=self.headers, timeout=timeout)
            except urllib3.exceptions.HTTPError:
                if attempt == attempts:
                    raise
            else:
                if response.status < 300:
                    return response.data
                if response.status not in TRANSIENT or attempt == attempts:
                    raise ApiError(method, path, response.status, response.data)
            time.sleep(0.1 * 2**attempt)
        raise AssertionError("unreachable")

    def get(self, path: str, **query: Any) -> Any:
        return json.loads(self.request("GET", path, query=query or None))

    def post(self, path: str, body: bytes, **kwargs: Any) -> bytes:
        return self.request("POST", path, body, **kwargs)

    def metrics(self) -> str:
        return self.request("GET", "/metrics").decode()

    def stream(self, path: str, query: dict[str, Any], read_timeout: float) -> urllib3.BaseHTTPResponse:
        """A long-running GET (a watch) whose body is read as it arrives."""
        url = f"{self.server}{path}?{urlencode(query)}"
        response = self.pool.request(
            "GET",
            url,
            headers=self.headers,
            preload_content=False,
            timeout=urllib3.Timeout(connect=10, read=read_timeout),
        )
        if response.status != 200:
            raise ApiError("GET", path, response.status, response.read())
        return response


def pods_path(namespace: str, name: str | None = None, sub: str | None = None) -> str:
    path = f"/api/v1/namespaces/{quote(namespace)}/pods"
    if name:
        path += f"/{quote(name)}"
    if sub:
        path += f"/{sub}"
    return path


def binding_body(namespace: str, name: str, uid: str, node: str) -> bytes:
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": namespace, "uid": uid},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
    ).encode()


def watch_lines(response: urllib3.BaseHTTPResponse, stop: threading.Event) -> Iterator[dict[str, Any]]:
    """The events of a watch response, one decoded JSON object per line."""
    buffer = b""
    for chunk in response.stream(65536):
        buffer += chunk
        *lines, buffer = buffer.split(b"\n")
        for line in lines:
            if line.strip():
                yield json.loads(line)
        if stop.is_set():
            return


def in_parallel(work: Callable[[int], object], count: int, threads: int) -> None:
    """Run work(0..count-1) on `threads` threads, each taking the next index; the first error is raised."""
    lock = threading.Lock()
    next_index = iter(range(count))
    errors: list[BaseException] = []

    def worker() -> None:
        while not errors:
            with lock:
                i = next(next_index, None)
            if i is None:
                return
            try:
                work(i)
            except BaseException as e:  # noqa: BLE001 — handed to the caller below
                errors.append(e)

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(min(threads, max(count, 1)))]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise errors[0]
