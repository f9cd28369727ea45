"""Node: NodeGetInfo, NodeGetCapabilities, required fields of every node RPC, NOT_FOUND for
unknown volumes, and NodeGetVolumeStats of a path nothing was published at.

Required-field checks send a request that is complete except for the one field, so that the
error can only be about that field.
"""

from __future__ import annotations

from typing import Any

from oxide_csi.csi_v1 import csi_pb2
from tests.sanity.checks.common import unknown_id
from tests.sanity.driver import (
    CheckFailed,
    Code,
    Driver,
    NodeCap,
    PluginService,
    mount_capability,
)
from tests.sanity.resources import Resources

_STAGE = NodeCap.STAGE_UNSTAGE_VOLUME
_STATS = NodeCap.GET_VOLUME_STATS
#: The spec's limit for node_id, which overrides the general 128-byte limit.
NODE_ID_MAX_BYTES = 256


def node_capabilities_known(d: Driver, r: Resources) -> None:
    """Every node capability is a known RPC type, never UNKNOWN."""
    for cap in d.node_capabilities():
        if cap == 0 or cap not in NodeCap.Type.values():
            raise CheckFailed(f"unknown node capability {cap}")


def node_info_fields(d: Driver, r: Resources) -> None:
    """node_id is REQUIRED and at most 256 bytes; max_volumes_per_node is not negative;
    accessible_topology only with VOLUME_ACCESSIBILITY_CONSTRAINTS."""
    info = d.ok("NodeGetInfo", csi_pb2.NodeGetInfoRequest())
    if not info.node_id:
        raise CheckFailed("NodeGetInfo returned an empty node_id")
    if len(info.node_id.encode()) > NODE_ID_MAX_BYTES:
        raise CheckFailed(f"node_id is longer than {NODE_ID_MAX_BYTES} bytes")
    if info.max_volumes_per_node < 0:
        raise CheckFailed(f"max_volumes_per_node is negative ({info.max_volumes_per_node})")
    if info.HasField("accessible_topology") and (
        PluginService.VOLUME_ACCESSIBILITY_CONSTRAINTS not in d.plugin_capabilities()
    ):
        raise CheckFailed("NodeGetInfo reports topology without VOLUME_ACCESSIBILITY_CONSTRAINTS")


def _stage(r: Resources, without: Any) -> csi_pb2.NodeStageVolumeRequest:
    """A complete NodeStageVolume request but for the field ``without``."""
    request = csi_pb2.NodeStageVolumeRequest(
        volume_id=unknown_id(),
        staging_target_path=r.staging_path(),
        volume_capability=mount_capability(),
    )
    request.ClearField(without)
    return request


def stage_requires_volume_id(d: Driver, r: Resources) -> None:
    """NodeStageVolume: volume_id is REQUIRED."""
    d.require_node(_STAGE)
    r.expect_error(
        Code.INVALID_ARGUMENT, "NodeStageVolume", _stage(r, "volume_id"), "without volume_id"
    )


def stage_requires_staging_path(d: Driver, r: Resources) -> None:
    """NodeStageVolume: staging_target_path is REQUIRED."""
    d.require_node(_STAGE)
    request = _stage(r, "staging_target_path")
    r.expect_error(Code.INVALID_ARGUMENT, "NodeStageVolume", request, "without staging_target_path")


def stage_requires_capability(d: Driver, r: Resources) -> None:
    """NodeStageVolume: volume_capability is REQUIRED."""
    d.require_node(_STAGE)
    request = _stage(r, "volume_capability")
    r.expect_error(Code.INVALID_ARGUMENT, "NodeStageVolume", request, "without volume_capability")


def unstage_requires_fields(d: Driver, r: Resources) -> None:
    """NodeUnstageVolume: volume_id and staging_target_path are REQUIRED."""
    d.require_node(_STAGE)
    no_id = csi_pb2.NodeUnstageVolumeRequest(staging_target_path=r.staging_path())
    d.expect_error(Code.INVALID_ARGUMENT, "NodeUnstageVolume", no_id, "without volume_id")
    no_path = csi_pb2.NodeUnstageVolumeRequest(volume_id=unknown_id())
    d.expect_error(
        Code.INVALID_ARGUMENT, "NodeUnstageVolume", no_path, "without staging_target_path"
    )


def _publish(d: Driver, r: Resources, without: Any) -> csi_pb2.NodePublishVolumeRequest:
    """A complete NodePublishVolume request but for the field ``without``."""
    request = csi_pb2.NodePublishVolumeRequest(
        volume_id=unknown_id(),
        target_path=r.target_path(),
        volume_capability=mount_capability(),
    )
    if d.has_node(_STAGE):
        request.staging_target_path = r.staging_path()
    request.ClearField(without)
    return request


def publish_requires_volume_id(d: Driver, r: Resources) -> None:
    """NodePublishVolume: volume_id is REQUIRED."""
    request = _publish(d, r, "volume_id")
    r.expect_error(Code.INVALID_ARGUMENT, "NodePublishVolume", request, "without volume_id")


def publish_requires_target_path(d: Driver, r: Resources) -> None:
    """NodePublishVolume: target_path is REQUIRED."""
    request = _publish(d, r, "target_path")
    r.expect_error(Code.INVALID_ARGUMENT, "NodePublishVolume", request, "without target_path")


def publish_requires_capability(d: Driver, r: Resources) -> None:
    """NodePublishVolume: volume_capability is REQUIRED."""
    request = _publish(d, r, "volume_capability")
    r.expect_error(Code.INVALID_ARGUMENT, "NodePublishVolume", request, "without volume_capability")


def unpublish_requires_fields(d: Driver, r: Resources) -> None:
    """NodeUnpublishVolume: volume_id and target_path are REQUIRED."""
    no_id = csi_pb2.NodeUnpublishVolumeRequest(target_path=r.target_path())
    d.expect_error(Code.INVALID_ARGUMENT, "NodeUnpublishVolume", no_id, "without volume_id")
    no_path = csi_pb2.NodeUnpublishVolumeRequest(volume_id=unknown_id())
    d.expect_error(Code.INVALID_ARGUMENT, "NodeUnpublishVolume", no_path, "without target_path")


def stats_requires_fields(d: Driver, r: Resources) -> None:
    """NodeGetVolumeStats: volume_id and volume_path are REQUIRED."""
    d.require_node(_STATS)
    no_id = csi_pb2.NodeGetVolumeStatsRequest(volume_path=r.staging_path())
    d.expect_error(Code.INVALID_ARGUMENT, "NodeGetVolumeStats", no_id, "without volume_id")
    no_path = csi_pb2.NodeGetVolumeStatsRequest(volume_id=unknown_id())
    d.expect_error(Code.INVALID_ARGUMENT, "NodeGetVolumeStats", no_path, "without volume_path")


def stats_unknown_volume(d: Driver, r: Resources) -> None:
    """NodeGetVolumeStats of a volume that does not exist (at an existing, empty directory)
    is NOT_FOUND."""
    d.require_node(_STATS)
    request = csi_pb2.NodeGetVolumeStatsRequest(
        volume_id=unknown_id(), volume_path=r.staging_path()
    )
    d.expect_error(Code.NOT_FOUND, "NodeGetVolumeStats", request, "for an unknown volume")


CHECKS = (
    node_capabilities_known,
    node_info_fields,
    stage_requires_volume_id,
    stage_requires_staging_path,
    stage_requires_capability,
    unstage_requires_fields,
    publish_requires_volume_id,
    publish_requires_target_path,
    publish_requires_capability,
    unpublish_requires_fields,
    stats_requires_fields,
    stats_unknown_volume,
)
