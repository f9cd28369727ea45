"""Request validation and the spec's error codes for conflicting or out-of-order calls."""

from __future__ import annotations

import grpc
import pytest

from oxide_csi.csi_v1 import csi_pb2
from oxide_csi.node.context import volume_facts
from oxide_csi.volume_contract import (
    CTX_DISK_NAME,
    CTX_FS_TYPE,
    CTX_READ_ONLY,
    CTX_SERIAL,
    CTX_SOURCE,
)
from tests.node.conftest import SERIAL_A, SERIAL_B, Mode, Node, block_cap, contexts, mount_cap
from tests.rpc import code_of

pytestmark = pytest.mark.root

INVALID = grpc.StatusCode.INVALID_ARGUMENT


def test_context_keys_are_the_published_ones() -> None:
    """Controller and node of different versions meet during an upgrade: the context keys both
    use (from ``oxide_csi.volume_contract``) are a wire contract and must not change."""
    assert (CTX_SERIAL, CTX_DISK_NAME, CTX_SOURCE, CTX_FS_TYPE, CTX_READ_ONLY) == (
        "oxide.computer/serial",
        "oxide.computer/disk-name",
        "oxide.computer/source",
        "oxide.computer/fs-type",
        "oxide.computer/read-only",
    )


async def test_missing_fields_are_invalid_arguments(node: Node) -> None:
    staging = str(node.plane.staging())
    target = str(node.plane.target())
    cap = mount_cap("ext4")
    stage = node.stub.NodeStageVolume
    publish = node.stub.NodePublishVolume
    calls = [
        stage(csi_pb2.NodeStageVolumeRequest(staging_target_path=staging, volume_capability=cap)),
        stage(csi_pb2.NodeStageVolumeRequest(volume_id="v", volume_capability=cap)),
        stage(csi_pb2.NodeStageVolumeRequest(volume_id="v", staging_target_path=staging)),
        stage(  # no serial anywhere: the node cannot know which device is meant
            csi_pb2.NodeStageVolumeRequest(
                volume_id="v", staging_target_path=staging, volume_capability=cap
            )
        ),
        publish(csi_pb2.NodePublishVolumeRequest(target_path=target, volume_capability=cap)),
        publish(csi_pb2.NodePublishVolumeRequest(volume_id="v", volume_capability=cap)),
        publish(csi_pb2.NodePublishVolumeRequest(volume_id="v", target_path=target)),
        node.stub.NodeUnstageVolume(csi_pb2.NodeUnstageVolumeRequest(staging_target_path=staging)),
        node.stub.NodeUnstageVolume(csi_pb2.NodeUnstageVolumeRequest(volume_id="v")),
        node.stub.NodeUnpublishVolume(csi_pb2.NodeUnpublishVolumeRequest(target_path=target)),
        node.stub.NodeUnpublishVolume(csi_pb2.NodeUnpublishVolumeRequest(volume_id="v")),
        node.stub.NodeGetVolumeStats(csi_pb2.NodeGetVolumeStatsRequest(volume_path="some/path")),
        node.stub.NodeGetVolumeStats(csi_pb2.NodeGetVolumeStatsRequest(volume_id="v")),
        stage(  # a serial no device could ever carry
            csi_pb2.NodeStageVolumeRequest(
                volume_id="v",
                staging_target_path=staging,
                volume_capability=cap,
                publish_context={"oxide.computer/serial": "x" * 21},
            )
        ),
    ]
    for i, call in enumerate(calls):
        assert await code_of(call) == INVALID, i
    # Present but useless context must not be mistaken for a serial either.
    bad_ctx = csi_pb2.NodeStageVolumeRequest(
        volume_id="v",
        staging_target_path=staging,
        volume_capability=cap,
        publish_context={"device": "/dev/mock"},
    )
    assert await code_of(stage(bad_ctx)) == INVALID


@pytest.mark.parametrize(
    "cap",
    [
        mount_cap("ext4", mode=Mode.MULTI_NODE_MULTI_WRITER),
        mount_cap("ext4", mode=Mode.SINGLE_NODE_READER_ONLY),
        mount_cap("btrfs"),
        mount_cap("ext4", flags=("bind",)),
        mount_cap("ext4", flags=("-o remount",)),
        csi_pb2.VolumeCapability(
            access_mode=csi_pb2.VolumeCapability.AccessMode(mode=Mode.SINGLE_NODE_WRITER)
        ),
    ],
)
async def test_unsupported_capabilities_are_invalid(
    node: Node, cap: csi_pb2.VolumeCapability
) -> None:
    loop = node.plane.attach(SERIAL_A)
    staging = node.plane.staging()
    assert await code_of(node.stage(staging, cap)) == INVALID
    assert loop.signature() == {}, "nothing was formatted on the way to the refusal"


async def test_publish_before_stage_is_failed_precondition(node: Node) -> None:
    node.plane.attach(SERIAL_A)
    staging, target = node.plane.staging(), node.plane.target()
    code = await code_of(node.publish(staging, target, mount_cap("ext4")))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    req = csi_pb2.NodePublishVolumeRequest(
        volume_id="vol-a",
        target_path=str(target),
        volume_capability=mount_cap("ext4"),
        **contexts(SERIAL_A),
    )
    code = await code_of(node.stub.NodePublishVolume(req))
    assert code == grpc.StatusCode.FAILED_PRECONDITION, "no staging path: spec says 9"
    assert not target.exists()


async def test_conflicting_stage_and_publish(node: Node) -> None:
    plane = node.plane
    plane.attach(SERIAL_A)
    plane.attach(SERIAL_B)
    staging, target = plane.staging(), plane.target()
    await node.stage(staging, mount_cap("ext4"))

    # Same staging path, another disk: incompatible existing stage.
    code = await code_of(node.stage(staging, mount_cap("ext4"), serial=SERIAL_B, volume_id="b"))
    assert code == grpc.StatusCode.ALREADY_EXISTS
    # Same disk and path, another filesystem type or as a block volume: incompatible.
    assert await code_of(node.stage(staging, mount_cap("xfs"))) == grpc.StatusCode.ALREADY_EXISTS
    assert await code_of(node.stage(staging, block_cap())) == grpc.StatusCode.ALREADY_EXISTS

    # Publishing disk B from a staging path that holds disk A: B is not staged there.
    code = await code_of(node.publish(staging, target, mount_cap(), serial=SERIAL_B))
    assert code == grpc.StatusCode.FAILED_PRECONDITION

    await node.publish(staging, target, mount_cap("ext4"))
    # Same target, other read-only setting: incompatible.
    code = await code_of(node.publish(staging, target, mount_cap("ext4"), readonly=True))
    assert code == grpc.StatusCode.ALREADY_EXISTS

    await node.unpublish(target)
    await node.unstage(staging)
    assert plane.mounts() == []


@pytest.mark.parametrize("kind", ["mount", "block"])
async def test_single_writer_is_published_once(node: Node, kind: str) -> None:
    """SINGLE_NODE_SINGLE_WRITER: a second target is FAILED_PRECONDITION (spec table);
    SINGLE_NODE_MULTI_WRITER allows it."""
    plane = node.plane
    plane.attach(SERIAL_A)
    staging = plane.staging()
    single = (
        mount_cap("ext4", mode=Mode.SINGLE_NODE_SINGLE_WRITER)
        if kind == "mount"
        else block_cap(Mode.SINGLE_NODE_SINGLE_WRITER)
    )
    multi = (
        mount_cap("ext4", mode=Mode.SINGLE_NODE_MULTI_WRITER)
        if kind == "mount"
        else block_cap(Mode.SINGLE_NODE_MULTI_WRITER)
    )
    first, second = plane.target("pod1"), plane.target("pod2")
    await node.stage(staging, single)
    await node.publish(staging, first, single)
    await node.publish(staging, first, single)  # same target again: idempotent
    code = await code_of(node.publish(staging, second, single))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    await node.publish(staging, second, multi)
    for target in (first, second):
        await node.unpublish(target)
    await node.unstage(staging)
    assert plane.mounts() == []


async def test_unstage_and_unpublish_of_unknown_paths_succeed(node: Node) -> None:
    await node.unpublish(node.plane.target("never"))
    await node.unstage(node.plane.staging("never"))


async def test_unpublish_leaves_a_directory_with_foreign_content(node: Node) -> None:
    """Nothing mounted, but files there: not ours to delete."""
    target = node.plane.target()
    target.mkdir()
    (target / "somebody's").write_text("data")
    code = await code_of(node.unpublish(target))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert (target / "somebody's").read_text() == "data"


def test_only_the_controller_decides_formatting_and_read_only() -> None:
    """A static PersistentVolume's volume_context is whatever its author wrote; the
    controller's publish_context wins, so "blank" there never gets an existing disk formatted."""
    facts = volume_facts
    serial = {CTX_SERIAL: SERIAL_A}
    forged = {**serial, CTX_SOURCE: "blank"}
    static = {**serial, CTX_SOURCE: "static"}
    assert facts(static, forged).known_new is False
    assert facts({}, forged).known_new is True  # an older controller's publish: as before
    assert facts(serial, {CTX_SOURCE: "image"}).known_new is False
    read_only = {**serial, CTX_READ_ONLY: "true"}
    assert facts(read_only, {}).read_only and facts({}, read_only).read_only
    assert not facts(serial, {}).read_only
