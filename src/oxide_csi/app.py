"""Wiring: from a :class:`ServeConfig` to the servicers registered on one server.

This is the only module that knows which pieces a mode needs. The node side is built without the
Oxide client on purpose: a node plugin holds no credentials.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass, field

import grpc

from oxide_csi import __version__
from oxide_csi.config import OxideSettings, ServeConfig
from oxide_csi.csi_v1 import csi_pb2_grpc
from oxide_csi.oxide import OxideClient, OxideConfig
from oxide_csi.readiness import CachedReadiness
from oxide_csi.server.grpc_server import Registration, ServerSpec
from oxide_csi.servicers.identity import IdentityServicer


def oxide_client_config(settings: OxideSettings) -> OxideConfig:
    return OxideConfig(
        host=settings.credentials.host,
        token=settings.credentials.token.reveal(),
        project=settings.project,
        api_version=settings.api_version,
        user_agent=f"oxide-csi/{__version__}",
    )


@dataclass
class Plugin:
    """Everything one ``serve`` process runs; ``resources`` closes what it opened."""

    spec: ServerSpec
    resources: AsyncExitStack = field(default_factory=AsyncExitStack)

    async def aclose(self) -> None:
        await self.resources.aclose()


async def build_plugin(config: ServeConfig) -> Plugin:
    resources = AsyncExitStack()
    registrations: list[Registration] = []
    services = ["csi.v1.Identity"]
    readiness = CachedReadiness(None)
    if config.mode.runs_controller:
        assert config.oxide is not None
        client = await resources.enter_async_context(
            OxideClient(oxide_client_config(config.oxide))
        )
        readiness = CachedReadiness(client.get_project)
    identity = IdentityServicer(controller=config.mode.runs_controller, readiness=readiness)

    def register_identity(server: grpc.aio.Server) -> None:
        csi_pb2_grpc.add_IdentityServicer_to_server(identity, server)

    registrations.append(register_identity)
    spec = ServerSpec(
        endpoint=config.endpoint,
        registrations=registrations,
        service_names=services,
        shutdown_grace=config.shutdown_grace,
    )
    return Plugin(spec=spec, resources=resources)
