"""NodeGetCapabilities and NodeGetInfo, the slot count worked out from the devices present."""

from __future__ import annotations

import pytest

from oxide_csi.csi_v1 import csi_pb2
from tests.node.conftest import NODE_ID, SERIAL_A, SERIAL_B, Node, NodeFactory
from tests.node.plane import Plane

pytestmark = pytest.mark.root

Cap = csi_pb2.NodeServiceCapability.RPC
ATTACHABLE = "csi.oxide.computer/attachable"


async def test_capabilities(node: Node) -> None:
    response = await node.stub.NodeGetCapabilities(csi_pb2.NodeGetCapabilitiesRequest())
    assert {c.rpc.type for c in response.capabilities} == {
        Cap.STAGE_UNSTAGE_VOLUME,
        Cap.GET_VOLUME_STATS,
        Cap.VOLUME_CONDITION,
        Cap.SINGLE_NODE_MULTI_WRITER,
    }


async def info(node: Node) -> csi_pb2.NodeGetInfoResponse:
    response: csi_pb2.NodeGetInfoResponse = await node.stub.NodeGetInfo(
        csi_pb2.NodeGetInfoRequest()
    )
    return response


async def test_node_info_without_any_disk_still_reserves_the_boot_disk(node: Node) -> None:
    response = await info(node)
    assert response.node_id == NODE_ID
    assert response.max_volumes_per_node == 7
    assert dict(response.accessible_topology.segments) == {ATTACHABLE: "true"}


async def test_a_node_that_must_not_be_cycled_says_so(node_factory: NodeFactory) -> None:
    async with node_factory(attachable=False) as node:
        segments = dict((await info(node)).accessible_topology.segments)
    assert segments == {ATTACHABLE: "false"}


async def test_unmanaged_disks_take_slots_managed_ones_do_not(
    node_factory: NodeFactory, plane: Plane
) -> None:
    plane.attach("instance-0-boot")  # the boot disk: not one of ours
    plane.attach("data-disk-by-hand")  # another disk someone attached by hand
    plane.attach(SERIAL_A)
    plane.attach(SERIAL_B)
    # A file outside the device directory is not a disk of this instance at all.
    elsewhere = plane.base / "elsewhere"
    elsewhere.mkdir()
    plane.attach("stray-unmanaged", directory=elsewhere)
    async with node_factory(max_disks=8) as node:
        assert (await info(node)).max_volumes_per_node == 6
    async with node_factory(max_disks=12) as node:
        assert (await info(node)).max_volumes_per_node == 10
    # More unmanaged disks than slots: never 0 (which would mean "unlimited" to the CO).
    plane.attach("another-by-hand")
    async with node_factory(max_disks=3) as node:
        assert (await info(node)).max_volumes_per_node == 1
