"""Helpers to drive a real ``oxide-csi dev`` process over real gRPC."""

from __future__ import annotations

import re
from pathlib import Path

import grpc

from oxide_csi.csi_v1 import csi_pb2, csi_pb2_grpc
from tests.plugin_process import PluginProcess

_NODE_ID = re.compile(r"node id ([0-9a-f-]{36})")
_SIM_URL = re.compile(r"simulated Oxide (?:release v\d+ )?at (http://\S+) ")


def dev_args(endpoint: str, state: Path, *extra: str) -> list[str]:
    # stop/start times are the defaults on purpose: they must be fast enough for tests
    return ["dev", "--endpoint", endpoint, "--state-dir", str(state), *extra]


def node_id_from_output(plugin: PluginProcess) -> str:
    match = _NODE_ID.search(plugin.output())
    assert match, plugin.output()
    return match.group(1)


def sim_url_from_output(plugin: PluginProcess) -> str:
    """The simulated Oxide's base URL dev mode printed (its /sim/stats counts the stops)."""
    match = _SIM_URL.search(plugin.output())
    assert match, plugin.output()
    return match.group(1)


def mount_capability(fs_type: str = "") -> csi_pb2.VolumeCapability:
    return csi_pb2.VolumeCapability(
        mount=csi_pb2.VolumeCapability.MountVolume(fs_type=fs_type),
        access_mode=csi_pb2.VolumeCapability.AccessMode(
            mode=csi_pb2.VolumeCapability.AccessMode.SINGLE_NODE_WRITER
        ),
    )


def create_and_publish(
    channel: grpc.Channel,
    name: str,
    node_id: str,
    *,
    fs_type: str = "",
    size: int | None = 64 << 20,
) -> tuple[csi_pb2.Volume, dict[str, str]]:
    """CreateVolume (``size`` None: the plugin's default) and ControllerPublishVolume to
    ``node_id``; the volume and its publish_context."""
    controller = csi_pb2_grpc.ControllerStub(channel)
    cap = mount_capability(fs_type)
    request = csi_pb2.CreateVolumeRequest(name=name, volume_capabilities=[cap])
    if size is not None:
        request.capacity_range.required_bytes = size
    volume = controller.CreateVolume(request, timeout=30).volume
    published = controller.ControllerPublishVolume(
        csi_pb2.ControllerPublishVolumeRequest(
            volume_id=volume.volume_id,
            node_id=node_id,
            volume_capability=cap,
            volume_context=volume.volume_context,
        ),
        timeout=60,
    )
    return volume, dict(published.publish_context)


def unpublish(channel: grpc.Channel, volume_id: str, node_id: str) -> None:
    controller = csi_pb2_grpc.ControllerStub(channel)
    controller.ControllerUnpublishVolume(
        csi_pb2.ControllerUnpublishVolumeRequest(volume_id=volume_id, node_id=node_id),
        timeout=60,
    )


def block_capability() -> csi_pb2.VolumeCapability:
    return csi_pb2.VolumeCapability(
        block=csi_pb2.VolumeCapability.BlockVolume(),
        access_mode=csi_pb2.VolumeCapability.AccessMode(
            mode=csi_pb2.VolumeCapability.AccessMode.SINGLE_NODE_WRITER
        ),
    )


def stage(
    node: csi_pb2_grpc.NodeStub,
    volume: csi_pb2.Volume,
    context: dict[str, str],
    staging: Path,
    cap: csi_pb2.VolumeCapability | None = None,
) -> None:
    """NodeStageVolume (an ext4 filesystem unless ``cap`` says otherwise)."""
    node.NodeStageVolume(
        csi_pb2.NodeStageVolumeRequest(
            volume_id=volume.volume_id,
            publish_context=context,
            staging_target_path=str(staging),
            volume_capability=cap or mount_capability("ext4"),
            volume_context=volume.volume_context,
        ),
        timeout=60,
    )


def publish(
    node: csi_pb2_grpc.NodeStub,
    volume: csi_pb2.Volume,
    context: dict[str, str],
    staging: Path,
    target: Path,
    cap: csi_pb2.VolumeCapability | None = None,
) -> None:
    node.NodePublishVolume(
        csi_pb2.NodePublishVolumeRequest(
            volume_id=volume.volume_id,
            publish_context=context,
            staging_target_path=str(staging),
            target_path=str(target),
            volume_capability=cap or mount_capability("ext4"),
            volume_context=volume.volume_context,
        ),
        timeout=60,
    )


def unpublish_unstage(
    node: csi_pb2_grpc.NodeStub, volume_id: str, staging: Path, target: Path
) -> None:
    node.NodeUnpublishVolume(
        csi_pb2.NodeUnpublishVolumeRequest(volume_id=volume_id, target_path=str(target)),
        timeout=60,
    )
    node.NodeUnstageVolume(
        csi_pb2.NodeUnstageVolumeRequest(volume_id=volume_id, staging_target_path=str(staging)),
        timeout=60,
    )
