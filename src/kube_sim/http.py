"""The HTTP side: stdlib ``ThreadingHTTPServer`` (HTTP/1.1, keep-alive, optional TLS).

It authenticates (bearer tokens), applies the faults a test injects (``faults.Faults``),
records every request, streams watches as chunked JSON lines, and hands
everything else to ``routes.call``. Errors leave as ``Status`` bodies with Content-Type
exactly ``application/json`` (lightkube only raises ``ApiError`` for that header).
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import socket
import ssl
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from kube_sim import rbac, routes
from kube_sim.errors import ApiError, bad_request
from kube_sim.faults import Faults
from kube_sim.store import Store

log = logging.getLogger(__name__)

_MAX_BODY = 3 << 20
_OPEN_PATHS = ("/version", "/healthz", "/readyz", "/livez")


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str
    query: str
    token: str | None
    status: int  # 0: no answer (the token was blocked)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kube-sim"
    sys_version = ""
    timeout = 120
    disable_nagle_algorithm = True
    server: KubeHTTPServer

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _token(self) -> str | None:
        auth = self.headers.get("authorization", "")
        return auth[7:].strip() if auth.lower().startswith("bearer ") else None

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _cut_off(self, token: str | None) -> bool:
        """Apply a block on this token: no answer at all, as if the network were cut."""
        mode = self.server.faults.mode(token)
        if mode is None or token is None:
            return False
        url = urlsplit(self.path)
        self.server.record(RequestRecord(self.command, url.path, url.query, token, 0))
        if mode == "hang":
            self.server.faults.hang(token)
        self._drop()
        return True

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        token = self._token()
        record = self.server.record
        if self._cut_off(token):
            return
        try:
            status, body = self._answer(url.path, dict(parse_qsl(url.query)), token)
        except ApiError as e:
            status, body = e.code, e.status
            self.close_connection = self.close_connection or e.code == 413
        except _Streamed:
            return
        except Exception as e:  # a kube_sim bug: answer as the API server does, and log it
            log.exception("kube_sim failed on %s %s", self.command, url.path)
            status, body = 500, ApiError(500, "InternalError", f"kube_sim: {e!r}").status
        record(RequestRecord(self.command, url.path, url.query, token, status))
        self._send(status, json.dumps(body).encode())

    def _answer(self, path: str, query: dict[str, str], token: str | None) -> tuple[int, Any]:
        body = self._read_body()
        faults = self.server.faults
        if faults.tokens and token not in faults.tokens and path not in _OPEN_PATHS:
            raise ApiError(401, "Unauthorized", "Unauthorized")
        if query.get("dryRun"):
            raise bad_request("kube_sim does not serve dryRun requests")
        injected = faults.take(self.command, path, token)
        if injected is not None and not injected[1]:
            raise injected[0]
        if path in ("/healthz", "/readyz", "/livez"):
            return 200, "ok"
        target = routes.parse(path)
        if target is None:
            return 200, routes.discovery(path, self.server.git_version)
        watch = self.command == "GET" and query.get("watch") in ("1", "true")
        verb = rbac.verb_of(self.command, target.name, watch)
        res = target.res
        self.server.rbac.check(
            token, verb, res.group, res.plural, target.namespace or "", target.name or ""
        )
        if watch:
            self._stream(target, query, token)
        ctype = self.headers.get("content-type", "application/json")
        answer = routes.call(self.server.store, self.command, target, query, body, ctype)
        if injected is not None:  # landed: the write was made, the answer is lost
            raise injected[0]
        return answer

    def _read_body(self) -> Any:
        length = int(self.headers.get("content-length") or 0)
        if length > _MAX_BODY:
            raise ApiError(413, "RequestEntityTooLarge", "the request is too large")
        raw = self.rfile.read(length) if length > 0 else b""
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError as e:
            raise bad_request(f"the body of the request could not be decoded: {e}") from None

    def _send(self, status: int, payload: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except OSError:
            self.close_connection = True

    def _start_stream(self) -> None:
        url = urlsplit(self.path)
        self.server.record(RequestRecord(self.command, url.path, url.query, self._token(), 200))
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _stream(self, target: routes.Target, query: dict[str, str], token: str | None) -> None:
        """Serve a watch until its timeout, the client leaves, or the server stops."""
        store, faults = self.server.store, self.server.faults
        try:
            w = store.watch(
                target.res,
                target.namespace,
                query.get("labelSelector"),
                query.get("fieldSelector"),
                query.get("resourceVersion"),
            )
        except ApiError as e:
            if e.code != 410:
                raise
            # a resourceVersion too old to resume from: the watch cache answers with an
            # ERROR event in a 200 stream, and the client starts over with a fresh list
            self._start_stream()
            self._chunk(json.dumps({"type": "ERROR", "object": e.status}).encode() + b"\n")
            self._chunk(b"")
            raise _Streamed() from None
        timeout = float(query.get("timeoutSeconds") or 0)
        deadline = time.monotonic() + timeout if timeout > 0 else None
        self._start_stream()
        try:
            while not faults.stopping and (deadline is None or time.monotonic() < deadline):
                if self._cut_off(token):
                    raise _Streamed()
                try:
                    item = w.events.get(timeout=0.2)
                except queue.Empty:
                    continue
                if item is None:
                    break
                kind, obj = item
                self._chunk(json.dumps({"type": kind, "object": obj}).encode() + b"\n")
            self._chunk(b"")
        except OSError:
            self.close_connection = True
        finally:
            store.unwatch(w)
        raise _Streamed()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)


class _Streamed(Exception):
    """The answer was streamed (a watch, recorded when it began); nothing more to send."""


class KubeHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(
        self,
        addr: tuple[str, int],
        store: Store,
        faults: Faults,
        access: rbac.Rbac,
        git_version: str,
        tls: ssl.SSLContext | None,
    ) -> None:
        self.store = store
        self.faults = faults
        self.rbac = access
        self.git_version = git_version
        self.requests: list[RequestRecord] = []
        self._tls = tls
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        super().__init__(addr, _Handler)

    def record(self, entry: RequestRecord) -> None:
        with self._lock:
            self.requests.append(entry)

    def get_request(self) -> tuple[Any, Any]:
        sock, addr = super().get_request()
        if self._tls is not None:  # the handshake happens in the handler's thread
            sock = self._tls.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError | ssl.SSLError):
            return
        log.error("error serving %s", client_address, exc_info=True)

    def close_all_connections(self) -> None:
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
