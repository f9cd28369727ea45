"""An in-process gRPC server on a unix socket with test servicers plugged in."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import grpc

from oxide_csi.endpoint import parse_endpoint
from oxide_csi.server.grpc_server import Registration, ServerSpec, start_server
from oxide_csi.server.interceptor import ErrorTranslator


@asynccontextmanager
async def serving(
    sock: Path, registrations: Sequence[Registration], translate: ErrorTranslator | None = None
) -> AsyncIterator[grpc.aio.Channel]:
    spec = ServerSpec(
        endpoint=parse_endpoint(f"unix://{sock}"),
        registrations=registrations,
        service_names=[],
        shutdown_grace=1.0,
        translate_errors=translate,
    )
    server = await start_server(spec)
    channel = grpc.aio.insecure_channel(f"unix://{sock}")
    try:
        yield channel
    finally:
        await channel.close()
        await server.stop(0)
