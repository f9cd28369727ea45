"""The node's attach limit: NodeGetInfo.max_volumes_per_node is a promise the controller keeps.

Publishing as many volumes as the node has room for works; one more is RESOURCE_EXHAUSTED
("Max volumes attached"). Room is the advertised maximum minus the volumes the controller
already reports published to the node (LIST_VOLUMES_PUBLISHED_NODES).
"""

from __future__ import annotations

import pytest

from oxide_csi.csi_v1 import csi_pb2
from tests.sanity.checks.common import list_volume_pages
from tests.sanity.driver import CheckFailed, Code, ControllerCap, Driver, mount_capability
from tests.sanity.resources import Resources

#: Beyond this many free slots the check would mostly measure the backend's attach speed.
MAX_VOLUMES_TO_FILL = 64


def _already_published(d: Driver, node_id: str) -> int:
    if not (
        d.has_controller(ControllerCap.LIST_VOLUMES_PUBLISHED_NODES)
        and d.has_controller(ControllerCap.LIST_VOLUMES)
    ):
        return 0
    return sum(
        node_id in entry.status.published_node_ids
        for page in list_volume_pages(d)
        for entry in page
    )


def attach_limit(d: Driver, r: Resources) -> None:
    """Fill the node's free slots (concurrently, as a busy CO would), then publish one more:
    RESOURCE_EXHAUSTED. Unpublish them all again (concurrently)."""
    d.require_controller(ControllerCap.CREATE_DELETE_VOLUME, ControllerCap.PUBLISH_UNPUBLISH_VOLUME)
    node_id = d.node_id()
    limit = d.node_info().max_volumes_per_node
    if limit == 0:
        pytest.skip("NodeGetInfo sets no max_volumes_per_node: the CO decides the limit")
    free = limit - _already_published(d, node_id)
    if free > MAX_VOLUMES_TO_FILL:
        pytest.skip(f"{free} free slots: too many to fill in a conformance run")
    if free < 0:
        raise CheckFailed(f"the node holds more volumes than max_volumes_per_node={limit}")
    volumes = [r.new_volume(f"limit{i}") for i in range(free + 1)]

    def publish(volume: csi_pb2.Volume) -> csi_pb2.ControllerPublishVolumeRequest:
        return csi_pb2.ControllerPublishVolumeRequest(
            volume_id=volume.volume_id,
            node_id=node_id,
            volume_capability=mount_capability(),
            volume_context=volume.volume_context,
        )

    r.call_all(
        "ControllerPublishVolume",
        [publish(v) for v in volumes[:free]],
        f"filling the node's {free} free slots",
    )
    r.expect_error(
        Code.RESOURCE_EXHAUSTED,
        "ControllerPublishVolume",
        publish(volumes[free]),
        f"beyond max_volumes_per_node={limit}",
    )
    r.call_all(
        "ControllerUnpublishVolume",
        [
            csi_pb2.ControllerUnpublishVolumeRequest(volume_id=v.volume_id, node_id=node_id)
            for v in volumes[:free]
        ],
    )


CHECKS = (attach_limit,)
