"""Controller: ControllerPublishVolume / ControllerUnpublishVolume.

The node id comes from the driver's own NodeGetInfo, as a CO would get it.
"""

from __future__ import annotations

from oxide_csi.csi_v1 import csi_pb2
from tests.sanity.checks.common import list_volume_pages, unknown_id
from tests.sanity.driver import CheckFailed, Code, ControllerCap, Driver, mount_capability
from tests.sanity.resources import Resources

_PUBLISH = ControllerCap.PUBLISH_UNPUBLISH_VOLUME
_CREATE = ControllerCap.CREATE_DELETE_VOLUME


def _publish_request(volume_id: str, node_id: str) -> csi_pb2.ControllerPublishVolumeRequest:
    return csi_pb2.ControllerPublishVolumeRequest(
        volume_id=volume_id, node_id=node_id, volume_capability=mount_capability()
    )


def _published_nodes(d: Driver, volume_id: str) -> list[str] | None:
    """Where the controller says the volume is published (None: it cannot tell)."""
    if not d.has_controller(ControllerCap.LIST_VOLUMES_PUBLISHED_NODES):
        return None
    if d.has_controller(ControllerCap.GET_VOLUME):
        request = csi_pb2.ControllerGetVolumeRequest(volume_id=volume_id)
        return list(d.ok("ControllerGetVolume", request).status.published_node_ids)
    if d.has_controller(ControllerCap.LIST_VOLUMES):
        for page in list_volume_pages(d):
            for entry in page:
                if entry.volume.volume_id == volume_id:
                    return list(entry.status.published_node_ids)
        raise CheckFailed(f"volume {volume_id} is not listed by ListVolumes")
    return None


def publish_requires_volume_id(d: Driver, r: Resources) -> None:
    """ControllerPublishVolume: volume_id is REQUIRED."""
    d.require_controller(_PUBLISH)
    request = _publish_request("", d.node_id())
    r.expect_error(Code.INVALID_ARGUMENT, "ControllerPublishVolume", request, "without volume_id")


def publish_requires_node_id(d: Driver, r: Resources) -> None:
    """ControllerPublishVolume: node_id is REQUIRED."""
    d.require_controller(_PUBLISH, _CREATE)
    volume = r.new_volume("nonode")
    request = _publish_request(volume.volume_id, "")
    r.expect_error(Code.INVALID_ARGUMENT, "ControllerPublishVolume", request, "without node_id")


def publish_requires_capability(d: Driver, r: Resources) -> None:
    """ControllerPublishVolume: volume_capability is REQUIRED."""
    d.require_controller(_PUBLISH, _CREATE)
    volume = r.new_volume("nocap")
    request = _publish_request(volume.volume_id, d.node_id())
    request.ClearField("volume_capability")
    r.expect_error(
        Code.INVALID_ARGUMENT, "ControllerPublishVolume", request, "without volume_capability"
    )


def publish_unknown_volume(d: Driver, r: Resources) -> None:
    """Publishing a volume that does not exist is NOT_FOUND."""
    d.require_controller(_PUBLISH)
    request = _publish_request(unknown_id(), d.node_id())
    r.expect_error(Code.NOT_FOUND, "ControllerPublishVolume", request, "for an unknown volume")


def publish_unknown_node(d: Driver, r: Resources) -> None:
    """Publishing to a node that does not exist is NOT_FOUND."""
    d.require_controller(_PUBLISH, _CREATE)
    volume = r.new_volume("nowhere")
    request = _publish_request(volume.volume_id, "sanity-no-such-node-" + unknown_id()[:8])
    r.expect_error(Code.NOT_FOUND, "ControllerPublishVolume", request, "to an unknown node")


def publish_idempotent(d: Driver, r: Resources) -> None:
    """Publish twice: OK twice with the same publish_context; the controller reports the node
    (LIST_VOLUMES_PUBLISHED_NODES); unpublish twice: OK twice, and the node is gone."""
    d.require_controller(_PUBLISH, _CREATE)
    volume = r.new_volume("cpub")
    node = d.node_id()
    request = _publish_request(volume.volume_id, node)
    request.volume_context.update(volume.volume_context)
    first = r.call("ControllerPublishVolume", request)
    second = r.call("ControllerPublishVolume", request, "repeated")
    if dict(first.publish_context) != dict(second.publish_context):
        raise CheckFailed("a repeated ControllerPublishVolume returned another publish_context")
    nodes = _published_nodes(d, volume.volume_id)
    if nodes is not None and node not in nodes:
        raise CheckFailed(f"the published volume does not list node {node}: {nodes}")
    unpublish = csi_pb2.ControllerUnpublishVolumeRequest(volume_id=volume.volume_id, node_id=node)
    r.call("ControllerUnpublishVolume", unpublish)
    r.call("ControllerUnpublishVolume", unpublish, "repeated")
    nodes = _published_nodes(d, volume.volume_id)
    if nodes is not None and node in nodes:
        raise CheckFailed(f"the unpublished volume still lists node {node}")


def publish_readonly_conflict(d: Driver, r: Resources) -> None:
    """PUBLISH_READONLY: publishing again with the readonly flag flipped is ALREADY_EXISTS."""
    d.require_controller(_PUBLISH, _CREATE, ControllerCap.PUBLISH_READONLY)
    volume = r.new_volume("ro")
    request = _publish_request(volume.volume_id, d.node_id())
    r.call("ControllerPublishVolume", request)
    request.readonly = True
    r.expect_error(
        Code.ALREADY_EXISTS, "ControllerPublishVolume", request, "again with readonly=true"
    )


def unpublish_requires_volume_id(d: Driver, r: Resources) -> None:
    """ControllerUnpublishVolume: volume_id is REQUIRED."""
    d.require_controller(_PUBLISH)
    request = csi_pb2.ControllerUnpublishVolumeRequest(node_id=d.node_id())
    d.expect_error(Code.INVALID_ARGUMENT, "ControllerUnpublishVolume", request, "without volume_id")


def unpublish_unknown_volume(d: Driver, r: Resources) -> None:
    """Unpublishing a volume that does not exist: it is not attached anywhere, so the plugin
    SHOULD answer OK; NOT_FOUND is the one error the spec allows."""
    d.require_controller(_PUBLISH)
    request = csi_pb2.ControllerUnpublishVolumeRequest(volume_id=unknown_id(), node_id=d.node_id())
    r.call_or_fail_with(
        Code.NOT_FOUND, "ControllerUnpublishVolume", request, "for an unknown volume"
    )


def unpublish_never_published(d: Driver, r: Resources) -> None:
    """Unpublishing a volume that is not attached to the node MUST reply OK."""
    d.require_controller(_PUBLISH, _CREATE)
    volume = r.new_volume("neverpub")
    request = csi_pb2.ControllerUnpublishVolumeRequest(
        volume_id=volume.volume_id, node_id=d.node_id()
    )
    d.ok("ControllerUnpublishVolume", request, "for a volume that was never published")


CHECKS = (
    publish_requires_volume_id,
    publish_requires_node_id,
    publish_requires_capability,
    publish_unknown_volume,
    publish_unknown_node,
    publish_idempotent,
    publish_readonly_conflict,
    unpublish_requires_volume_id,
    unpublish_unknown_volume,
    unpublish_never_published,
)
