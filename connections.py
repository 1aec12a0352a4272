"""Kept-alive connections to the API server, one per thread, for the requests kubeapi.py makes itself.

The standard library's `http.client` on a connection a thread keeps costs about half the client CPU of a request
through urllib3's pool (0.46 against 0.74 ms for a pod's binding and event on 16 threads, measured on this API
server): no pool to check out of and back into, no URL parsing, no header re-normalising. It covers the usual
configurations (a kubeconfig or the in-cluster service account: TLS with a CA, a client certificate or a token);
`usable` says when not (a proxy, a TLS server name, socket options), and then the client's urllib3 pool is used.
"""

from __future__ import annotations

import http.client
import ssl
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from kubernetes.client import Configuration

IDLE_SECONDS = 60.0  # a connection unused this long is opened anew: the API server closes it at 90 s


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    reason: str
    headers: http.client.HTTPMessage
    data: bytes


def usable(configuration: Configuration) -> bool:
    """Whether these connections can do what the client's urllib3 pool would: a direct connection, verifying
    the server's certificate against its own address (or not at all)."""
    return not (
        configuration.proxy
        or configuration.tls_server_name
        or configuration.assert_hostname is not None
        or configuration.socket_options is not None
        or getattr(configuration, "keep_alive", False)
    )


def tls_context(configuration: Configuration) -> ssl.SSLContext:
    """The TLS settings the client's urllib3 pool would use: its CA (file or data), its client certificate,
    verification on unless `verify_ssl` is off."""
    context = ssl.create_default_context(cafile=configuration.ssl_ca_cert, cadata=configuration.ca_cert_data)
    if not configuration.verify_ssl:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, configuration.key_file)
    return context


class Connections:
    """A connection per thread to the configuration's server. A connection that failed is dropped, so the next
    request (a retry) opens a new one; one the server asked to close (`Connection: close`) reopens by itself."""

    def __init__(self, configuration: Configuration) -> None:
        url = urlsplit(configuration.host)
        self._host = url.hostname or "localhost"
        self._https = url.scheme == "https"
        self._port = url.port or (443 if self._https else 80)
        self._prefix = url.path.rstrip("/")
        self._context = tls_context(configuration) if self._https else None
        self._local = threading.local()

    def request(
        self, method: str, target: str, body: bytes | None, headers: dict[str, str], timeout: float
    ) -> Response:
        """One request and its whole answer. `target` is the path and query."""
        now = time.monotonic()
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is None or now - self._local.used > IDLE_SECONDS:
            if connection is not None:
                connection.close()
            connection = self._local.connection = self._open(timeout)
        elif connection.sock is not None:
            connection.sock.settimeout(timeout)
        connection.timeout = timeout
        try:
            connection.request(method, self._prefix + target, body=body, headers=headers)
            response = connection.getresponse()
            answer = Response(response.status, response.reason, response.headers, response.read())
        except BaseException:
            connection.close()
            self._local.connection = None
            raise
        self._local.used = time.monotonic()
        return answer

    def _open(self, timeout: float) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(self._host, self._port, timeout=timeout, context=self._context)
        return http.client.HTTPConnection(self._host, self._port, timeout=timeout)
