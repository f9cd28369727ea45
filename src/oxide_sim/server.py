"""The HTTP server: stdlib ``ThreadingHTTPServer`` speaking HTTP/1.1 with keep-alive.

It only moves bytes: every request goes to ``App.handle``. What it adds is connection
management: dropping a connection on an injected fault, and closing every open keep-alive
connection on ``stop()`` so a stopped simulator really is gone for its clients.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from oxide_sim.app import App
from oxide_sim.core import Core, InstanceHook
from oxide_sim.sim_config import SimConfig

log = logging.getLogger(__name__)

_MAX_BODY = 1 << 20


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "oxide-sim"
    sys_version = ""
    timeout = 120  # idle keep-alive connections are closed after this many seconds
    # Headers and body go out in two writes; with Nagle on, the body waits for the client's
    # delayed ACK of the headers (~40 ms per request on Linux loopback).
    disable_nagle_algorithm = True
    server: _HTTPServer

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def _read_body(self) -> bytes | None:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            total = 0
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > _MAX_BODY:
                    return None
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
        length = int(self.headers.get("content-length") or 0)
        if length > _MAX_BODY:
            return None
        return self.rfile.read(length) if length > 0 else b""

    def _dispatch(self) -> None:
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.close_connection = True
            return
        if body is None:
            self.send_error(413)
            return
        headers = {k.lower(): v for k, v in self.headers.items()}
        result = self.server.app.handle(self.command, self.path, headers, body)
        if result.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        try:
            self.send_response(result.status)
            for name, value in result.headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(result.body)))
            self.end_headers()
            if result.body:
                self.wfile.write(result.body)
        except OSError:
            # The client gave up (its timeout, or it closed the connection) before the answer
            # was written: normal under injected latency, and nothing to report.
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    # socketserver's listen backlog is 5: with more clients connecting at once (a controller's
    # burst of calls, 20 threads in the tests) Linux drops the surplus handshakes' last ACK and
    # the client, already "connected", waits for SYN-ACK retransmits (1 s, 2 s, 4 s, ...) that
    # a busy machine turns into read timeouts. A real rack's load balancer queues them.
    request_queue_size = 128

    def __init__(self, addr: tuple[str, int], app: App) -> None:
        self.app = app
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(addr, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # socketserver prints tracebacks to stderr; a vanished client is no error, anything
        # else goes to the log.
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            return
        log.error("error serving %s", client_address, exc_info=True)

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def close_all_connections(self) -> None:
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class SimulatorServer:
    """The simulated Oxide API, served in background threads.

    ``start()`` loads or seeds the state and binds ``cfg.listen`` (port 0 picks a free one,
    see ``url``); ``stop()`` closes every connection and the scheduler. Also a context manager.
    """

    def __init__(self, cfg: SimConfig) -> None:
        self.cfg = cfg
        self.core = Core(cfg)
        self.app = App(cfg, self.core)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    def add_instance_hook(self, hook: InstanceHook) -> None:
        """Register a hook; register before ``start()`` to also see transitions completed while
        reloading persisted state."""
        with self.core.lock:
            self.core.hooks.append(hook)

    def start(self) -> None:
        if self._httpd is not None:
            raise RuntimeError("simulator already started")
        self.core.boot()
        try:
            self._httpd = _HTTPServer(self.cfg.listen, self.app)
        except BaseException:
            self.core.shutdown()
            raise
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="oxide-sim-http",
            daemon=True,
        )
        self._thread.start()

    @property
    def address(self) -> tuple[str, int]:
        if self._httpd is None:
            raise RuntimeError("simulator not started")
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}"

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.close_all_connections()
            httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.core.shutdown()

    def __enter__(self) -> SimulatorServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
