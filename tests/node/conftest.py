"""A node under test: the real NodeServicer behind the production interceptor on an in-process
gRPC server (unix socket), finding real loop devices through sysfs, running real mkfs, mount and
friends. Its "instance" is the plane's device directory; its kubelet directory is a temp dir."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import grpc
import pytest

from oxide_csi.csi_v1 import csi_pb2, csi_pb2_grpc
from oxide_csi.node.device_identity import LoopBackingFileSource
from oxide_csi.node.devices import DeviceFinder
from oxide_csi.node.paths import PathGuard
from oxide_csi.servicers.node import NodeServicer
from tests.node.plane import Plane
from tests.server.inprocess import serving

pytestmark = pytest.mark.root

NODE_ID = "node-under-test"
SERIAL_A = "csi-0123456789abcdef"
SERIAL_B = "csi-fedcba9876543210"

Mode = csi_pb2.VolumeCapability.AccessMode
ModeValue: TypeAlias = "csi_pb2.VolumeCapability.AccessMode.Mode.ValueType"


def mount_cap(
    fs_type: str = "",
    mode: ModeValue = Mode.SINGLE_NODE_WRITER,
    flags: tuple[str, ...] = (),
) -> csi_pb2.VolumeCapability:
    return csi_pb2.VolumeCapability(
        mount=csi_pb2.VolumeCapability.MountVolume(fs_type=fs_type, mount_flags=list(flags)),
        access_mode=csi_pb2.VolumeCapability.AccessMode(mode=mode),
    )


def block_cap(mode: ModeValue = Mode.SINGLE_NODE_WRITER) -> csi_pb2.VolumeCapability:
    return csi_pb2.VolumeCapability(
        block=csi_pb2.VolumeCapability.BlockVolume(),
        access_mode=csi_pb2.VolumeCapability.AccessMode(mode=mode),
    )


def contexts(serial: str, source: str = "blank", fs: str = "") -> dict[str, Any]:
    """publish_context and volume_context as the controller would send them."""
    volume = {"oxide.computer/serial": serial, "oxide.computer/source": source}
    if fs:
        volume["oxide.computer/fs-type"] = fs
    return {
        "publish_context": {"oxide.computer/serial": serial},
        "volume_context": volume,
    }


@dataclass
class Node:
    plane: Plane
    stub: csi_pb2_grpc.NodeAsyncStub
    servicer: NodeServicer

    async def stage(
        self,
        staging: Path,
        cap: csi_pb2.VolumeCapability,
        serial: str = SERIAL_A,
        volume_id: str = "vol-a",
        **ctx: Any,
    ) -> csi_pb2.NodeStageVolumeResponse:
        fields = contexts(serial, **ctx)
        req = csi_pb2.NodeStageVolumeRequest(
            volume_id=volume_id, staging_target_path=str(staging), volume_capability=cap, **fields
        )
        response: csi_pb2.NodeStageVolumeResponse = await self.stub.NodeStageVolume(req, timeout=30)
        return response

    async def unstage(self, staging: Path, volume_id: str = "vol-a") -> None:
        req = csi_pb2.NodeUnstageVolumeRequest(
            volume_id=volume_id, staging_target_path=str(staging)
        )
        await self.stub.NodeUnstageVolume(req, timeout=30)

    async def publish(
        self,
        staging: Path,
        target: Path,
        cap: csi_pb2.VolumeCapability,
        readonly: bool = False,
        serial: str = SERIAL_A,
        volume_id: str = "vol-a",
    ) -> None:
        req = csi_pb2.NodePublishVolumeRequest(
            volume_id=volume_id,
            staging_target_path=str(staging),
            target_path=str(target),
            volume_capability=cap,
            readonly=readonly,
            **contexts(serial),
        )
        await self.stub.NodePublishVolume(req, timeout=30)

    async def unpublish(self, target: Path, volume_id: str = "vol-a") -> None:
        req = csi_pb2.NodeUnpublishVolumeRequest(volume_id=volume_id, target_path=str(target))
        await self.stub.NodeUnpublishVolume(req, timeout=30)

    async def stats(
        self, path: str, volume_id: str = "vol-a"
    ) -> csi_pb2.NodeGetVolumeStatsResponse:
        req = csi_pb2.NodeGetVolumeStatsRequest(volume_id=volume_id, volume_path=path)
        response: csi_pb2.NodeGetVolumeStatsResponse = await self.stub.NodeGetVolumeStats(
            req, timeout=30
        )
        return response


@pytest.fixture
def plane(short_tmp: Path) -> Iterator[Plane]:
    if os.geteuid() != 0:
        pytest.skip("node tests need root (loop devices, mkfs, mount)")
    made = Plane(short_tmp / "p")
    try:
        yield made
    finally:
        made.cleanup()


NodeFactory: TypeAlias = Callable[..., AbstractAsyncContextManager[Node]]


@pytest.fixture
def node_factory(plane: Plane, short_tmp: Path) -> NodeFactory:
    """Start a node with non-default settings: ``async with node_factory(max_disks=3) as n``."""
    count = 0

    @asynccontextmanager
    async def start(
        *,
        max_disks: int = 8,
        wait: float = 2.0,
        device_dir: Path | None = None,
        finder: DeviceFinder | None = None,
        attachable: bool = True,
    ) -> AsyncIterator[Node]:
        nonlocal count
        count += 1
        finder = finder or DeviceFinder(
            sources=(LoopBackingFileSource(device_dir or plane.device_dir),),
            timeout=wait,
            initial_delay=0.02,
            max_delay=0.2,
        )
        servicer = NodeServicer(
            node_id=NODE_ID,
            max_disks_per_instance=max_disks,
            guard=PathGuard(plane.kubelet_dir),
            finder=finder,
            attachable=attachable,
        )

        def register(server: grpc.aio.Server) -> None:
            csi_pb2_grpc.add_NodeServicer_to_server(servicer, server)

        async with serving(short_tmp / f"node{count}.sock", [register]) as channel:
            yield Node(plane, csi_pb2_grpc.NodeStub(channel), servicer)

    return start


@pytest.fixture
async def node(node_factory: NodeFactory) -> AsyncIterator[Node]:
    async with node_factory() as started:
        yield started
