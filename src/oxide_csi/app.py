"""Wiring: from a :class:`ServeConfig` to the servicers registered on one server.

This is the only module that knows which pieces a mode needs. The node side is built without the
Oxide client on purpose: a node plugin holds no credentials.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass, field

import grpc

from oxide_csi import __version__
from oxide_csi.config import ControllerSettings, OxideSettings, ServeConfig
from oxide_csi.controller.attach import AttachCoordinator, FileAttachRecordStore
from oxide_csi.controller.snapshots import SnapshotManager
from oxide_csi.controller.volumes import VolumeManager
from oxide_csi.csi_v1 import csi_pb2_grpc
from oxide_csi.oxide import OxideClient, OxideConfig
from oxide_csi.readiness import CachedReadiness
from oxide_csi.server.grpc_server import Registration, ServerSpec
from oxide_csi.servicers.controller import ControllerServicer
from oxide_csi.servicers.identity import IdentityServicer


def oxide_client_config(settings: OxideSettings) -> OxideConfig:
    return OxideConfig(
        host=settings.credentials.host,
        token=settings.credentials.token.reveal(),
        project=settings.project,
        api_version=settings.api_version,
        user_agent=f"oxide-csi/{__version__}",
    )


def controller_parts(
    client: OxideClient, settings: ControllerSettings
) -> tuple[ControllerServicer, AttachCoordinator]:
    """The controller servicer and its attach coordinator (which the caller starts and closes).

    The attach record lives in ``settings.state_dir``: a host directory in dev mode, a volume
    of the controller pod in a cluster (see the README on where that must live).
    """
    coordinator = AttachCoordinator(
        client,
        max_disks=settings.max_disks_per_instance,
        batch_window=settings.batch_window,
        record=FileAttachRecordStore(settings.state_dir / "attach"),
    )
    volumes = VolumeManager(client)
    servicer = ControllerServicer(volumes, SnapshotManager(client, volumes), coordinator)
    return servicer, coordinator


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
        client = await resources.enter_async_context(OxideClient(oxide_client_config(config.oxide)))
        readiness = CachedReadiness(client.get_project)
        assert config.controller is not None
        controller, coordinator = controller_parts(client, config.controller)
        await coordinator.start()
        resources.push_async_callback(coordinator.close)

        def register_controller(server: grpc.aio.Server) -> None:
            csi_pb2_grpc.add_ControllerServicer_to_server(controller, server)

        registrations.append(register_controller)
        services.append("csi.v1.Controller")
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
