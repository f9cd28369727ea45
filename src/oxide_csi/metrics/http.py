"""The ``/metrics`` HTTP endpoint.

prometheus-client's WSGI server runs in a daemon thread of its own, so a scrape never waits
for the asyncio loop that serves CSI calls, and a busy loop never makes a scrape time out.
The server is shut down with the plugin; failing to bind is a start-up error with one line,
like a busy CSI socket.
"""

from __future__ import annotations

import threading
from wsgiref.simple_server import WSGIServer

import structlog
from prometheus_client import CollectorRegistry, start_http_server

from oxide_csi.config import MetricsAddress
from oxide_csi.server.listener import ListenError

log = structlog.get_logger(__name__)


class MetricsServer:
    """A running ``/metrics`` endpoint; :meth:`close` stops it and frees the port."""

    def __init__(self, address: MetricsAddress, registry: CollectorRegistry) -> None:
        try:
            server, thread = start_http_server(address.port, address.host, registry)
        except OSError as exc:
            raise ListenError(f"cannot serve metrics on {address}: {exc.strerror}") from None
        self._server: WSGIServer = server
        self._thread: threading.Thread = thread
        self.address = address
        log.info("serving metrics", address=str(address), path="/metrics")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
