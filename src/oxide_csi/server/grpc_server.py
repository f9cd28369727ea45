"""The plugin's gRPC server.

Why ``grpc.aio`` rather than a thread pool: the controller holds many long-running calls at once
(a ControllerPublishVolume waits for an instance to stop, attach and start again, which can take
minutes, and Kubernetes sends dozens in parallel while a node drains). With a thread pool each
waiting call pins a thread, so the pool size becomes a hidden limit on concurrency and a busy pool
makes even Probe unresponsive. In asyncio a waiting call costs a coroutine; the attach
coordinator shares one stop/start cycle among callers with plain futures; and the few blocking
steps (mkfs, mount on the node) run in worker threads via ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import grpc
import structlog
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from oxide_csi.endpoint import Endpoint
from oxide_csi.server.interceptor import CallInterceptor, CallObserver, ErrorTranslator
from oxide_csi.server.listener import (
    finish_unix_socket,
    prepare_unix_socket,
    remove_unix_socket,
    restrictive_umask,
)

log = structlog.get_logger("oxide_csi.server")

#: Registers one servicer on a server (each servicer's ``register`` method).
Registration = Callable[[grpc.aio.Server], None]


@dataclass
class ServerSpec:
    endpoint: Endpoint
    registrations: Sequence[Registration]
    service_names: Sequence[str]
    shutdown_grace: float = 30.0
    on_call: CallObserver | None = None
    #: Set by the controller: its Oxide errors become domain errors before the code table.
    translate_errors: ErrorTranslator | None = None
    health_servicer: health.aio.HealthServicer = field(
        default_factory=lambda: health.aio.HealthServicer()
    )


async def start_server(spec: ServerSpec) -> grpc.aio.Server:
    """Build, bind and start the server; the caller owns stopping it."""
    server = grpc.aio.server(
        interceptors=[CallInterceptor(on_call=spec.on_call, translate=spec.translate_errors)],
        options=[("grpc.so_reuseport", 0)],
    )
    for register in spec.registrations:
        register(server)
    health_pb2_grpc.add_HealthServicer_to_server(spec.health_servicer, server)
    if spec.endpoint.scheme == "unix":
        assert spec.endpoint.path is not None
        prepare_unix_socket(spec.endpoint.path)
    with restrictive_umask(spec.endpoint):
        port = server.add_insecure_port(spec.endpoint.grpc_address)
        if spec.endpoint.scheme == "tcp" and port == 0:
            raise OSError(f"cannot listen on {spec.endpoint}")
        await server.start()
    finish_unix_socket(spec.endpoint)
    for name in ("", *spec.service_names):
        await spec.health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("listening", endpoint=str(spec.endpoint), port=port or None)
    return server


async def serve_until_signalled(
    spec: ServerSpec, on_shutdown: Callable[[], object] | None = None
) -> None:
    """Run the server until SIGTERM or SIGINT, then stop it gracefully.

    On the signal the server refuses new calls and gives the calls in flight up to
    ``shutdown_grace`` seconds to finish before cancelling them. ``on_shutdown`` runs after
    that, with the signal handlers still in place: it may take long (a power cycle that has
    stopped an instance finishes before the process exits), and a second SIGTERM or Ctrl-C
    must not cut it short.
    """
    server = await start_server(spec)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
        log.info("shutting down", grace_seconds=spec.shutdown_grace)
        await spec.health_servicer.enter_graceful_shutdown()
        await server.stop(spec.shutdown_grace)
    finally:
        try:
            if on_shutdown is not None:
                result = on_shutdown()
                if asyncio.iscoroutine(result):
                    await result
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            remove_unix_socket(spec.endpoint)
            log.info("stopped")
