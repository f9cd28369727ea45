"""A controller under test: the real servicer on an in-process gRPC server (unix socket, with the
production interceptor), the real Oxide client, the real attach coordinator, and a simulator
reached over HTTP on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import grpc
import httpx
import pytest

from oxide_csi.app import controller_parts
from oxide_csi.config import ControllerSettings
from oxide_csi.controller.attach import AttachCoordinator
from oxide_csi.controller.oxide_failures import translate_escaped
from oxide_csi.csi_v1 import csi_pb2, csi_pb2_grpc
from oxide_csi.oxide import OxideClient, OxideConfig
from oxide_sim import SimConfig, SimulatorServer
from tests.server.inprocess import serving

TOKEN = "oxide-token-controllertests0123456789"
GIB = 1 << 30

Mode = csi_pb2.VolumeCapability.AccessMode
ModeValue: TypeAlias = "csi_pb2.VolumeCapability.AccessMode.Mode.ValueType"


def mount_cap(
    mode: ModeValue = Mode.SINGLE_NODE_WRITER, fs_type: str = ""
) -> csi_pb2.VolumeCapability:
    return csi_pb2.VolumeCapability(
        mount=csi_pb2.VolumeCapability.MountVolume(fs_type=fs_type),
        access_mode=csi_pb2.VolumeCapability.AccessMode(mode=mode),
    )


def block_cap(mode: ModeValue = Mode.SINGLE_NODE_WRITER) -> csi_pb2.VolumeCapability:
    return csi_pb2.VolumeCapability(
        block=csi_pb2.VolumeCapability.BlockVolume(),
        access_mode=csi_pb2.VolumeCapability.AccessMode(mode=mode),
    )


@dataclass
class Rig:
    sim: SimulatorServer
    stub: csi_pb2_grpc.ControllerAsyncStub
    client: OxideClient
    hooks: httpx.Client
    coordinator: AttachCoordinator

    def stats(self) -> dict[str, Any]:
        body: dict[str, Any] = self.hooks.get("/sim/stats").json()
        return body

    def instance(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.stats()["instances"][name]
        return found

    async def create(
        self, name: str, size: int = GIB, **fields: Any
    ) -> csi_pb2.CreateVolumeResponse:
        fields.setdefault("volume_capabilities", [mount_cap()])
        req = csi_pb2.CreateVolumeRequest(
            name=name, capacity_range=csi_pb2.CapacityRange(required_bytes=size), **fields
        )
        response: csi_pb2.CreateVolumeResponse = await self.stub.CreateVolume(req, timeout=30)
        return response

    async def publish(
        self, volume_id: str, node_id: str, **fields: Any
    ) -> csi_pb2.ControllerPublishVolumeResponse:
        fields.setdefault("volume_capability", mount_cap())
        req = csi_pb2.ControllerPublishVolumeRequest(volume_id=volume_id, node_id=node_id, **fields)
        response: csi_pb2.ControllerPublishVolumeResponse = await self.stub.ControllerPublishVolume(
            req, timeout=60
        )
        return response

    async def unpublish(self, volume_id: str, node_id: str = "") -> None:
        req = csi_pb2.ControllerUnpublishVolumeRequest(volume_id=volume_id, node_id=node_id)
        await self.stub.ControllerUnpublishVolume(req, timeout=60)


@pytest.fixture
def sim_config(tmp_path: Path, request: pytest.FixtureRequest) -> SimConfig:
    """The simulator's settings; a test overrides some with ``indirect`` parametrization."""
    overrides: dict[str, Any] = getattr(request, "param", {})
    settings: dict[str, Any] = {
        "token": TOKEN,
        "instances": 3,
        "stop_seconds": 0.05,
        "start_seconds": 0.05,
        "state_dir": tmp_path / "sim",
    }
    return SimConfig(**{**settings, **overrides})


@pytest.fixture
def detach_policy() -> str:
    """The rig's detach policy: immediate (what most of these tests are about); a test of the
    deferred policy parametrizes it (``@pytest.mark.parametrize("detach_policy", ...)``)."""
    return "immediate"


@pytest.fixture
async def rig(
    sim_config: SimConfig, short_tmp: Path, tmp_path: Path, detach_policy: str
) -> AsyncIterator[Rig]:
    with SimulatorServer(sim_config) as sim:
        cfg = OxideConfig(
            host=sim.url,
            token=TOKEN,
            project=sim_config.project,
            backoff_base=0.01,
            poll_initial=0.02,
            poll_max=0.1,
        )
        async with OxideClient(cfg) as client:
            settings = ControllerSettings(
                max_disks_per_instance=sim_config.max_disks_per_instance,
                state_dir=tmp_path / "controller",
                batch_window=0.1,
                detach_policy=detach_policy,
            )
            servicer, coordinator = controller_parts(client, settings)
            await coordinator.start()

            def register(server: grpc.aio.Server) -> None:
                csi_pb2_grpc.add_ControllerServicer_to_server(servicer, server)

            try:
                async with serving(
                    short_tmp / "ctl.sock", [register], translate_escaped
                ) as channel:
                    with httpx.Client(base_url=sim.url, timeout=10) as hooks:
                        stub = csi_pb2_grpc.ControllerStub(channel)
                        yield Rig(sim, stub, client, hooks, coordinator)
            finally:
                await coordinator.close()
