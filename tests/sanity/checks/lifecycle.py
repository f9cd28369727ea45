"""Whole lifecycles through the node: mount and block volumes, data written through the
node path and read back (after a restore from snapshot and after a clone), and the node's
idempotency rules for stage/publish/unpublish/unstage.

These checks need the node plugin to run on this machine (the suite writes through the target
path itself), as csi-sanity does.
"""

from __future__ import annotations

import errno
import os
import stat
import uuid

from oxide_csi.csi_v1 import csi_pb2
from tests.sanity.checks.common import (
    Attached,
    attach,
    detach,
    publish_request,
    stage_request,
)
from tests.sanity.checks.snapshots import wait_ready
from tests.sanity.driver import (
    CheckFailed,
    Code,
    ControllerCap,
    Driver,
    NodeCap,
    block_capability,
    mount_capability,
    unique_name,
)
from tests.sanity.resources import Resources

_CREATE = ControllerCap.CREATE_DELETE_VOLUME
_STAGE = NodeCap.STAGE_UNSTAGE_VOLUME
_STATS = NodeCap.GET_VOLUME_STATS
DATA_FILE = "sanity-data.txt"
BLOCK_PATTERN_SIZE = 4096


def write_file(a: Attached) -> bytes:
    """Write a file through the mounted target path; return its content."""
    if not os.path.ismount(a.target_path):
        raise CheckFailed(f"NodePublishVolume did not mount anything at {a.target_path}")
    content = f"sanity {uuid.uuid4()}\n".encode()
    path = os.path.join(a.target_path, DATA_FILE)
    with open(path, "wb") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    with open(path, "rb") as handle:
        if handle.read() != content:
            raise CheckFailed("a file written through the target path reads back differently")
    return content


def read_file(a: Attached) -> bytes:
    if not os.path.ismount(a.target_path):
        raise CheckFailed(f"NodePublishVolume did not mount anything at {a.target_path}")
    path = os.path.join(a.target_path, DATA_FILE)
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise CheckFailed(f"{DATA_FILE} is missing from the volume") from None


def _check_stats(d: Driver, a: Attached, block: bool) -> None:
    if not d.has_node(_STATS):
        return
    request = csi_pb2.NodeGetVolumeStatsRequest(
        volume_id=a.volume_id, volume_path=a.target_path, staging_target_path=a.staging_path
    )
    reply = d.ok("NodeGetVolumeStats", request, "of a published volume")
    usage = {u.unit: u for u in reply.usage}
    byte_usage = usage.get(csi_pb2.VolumeUsage.BYTES)
    if byte_usage is None and not block:
        raise CheckFailed("NodeGetVolumeStats of a mounted volume reports no BYTES usage")
    for u in reply.usage:
        if u.unit == csi_pb2.VolumeUsage.UNKNOWN:
            raise CheckFailed("NodeGetVolumeStats: usage unit is REQUIRED but UNKNOWN")
        if min(u.total, u.used, u.available) < 0:
            raise CheckFailed(f"NodeGetVolumeStats reports a negative figure: {u}")
        if u.total <= 0 or u.used > u.total or u.available > u.total:
            raise CheckFailed(f"NodeGetVolumeStats figures do not add up: {u}")
    if byte_usage and a.volume.capacity_bytes and byte_usage.total > a.volume.capacity_bytes:
        raise CheckFailed("NodeGetVolumeStats reports more bytes than the volume's capacity")
    if d.has_node(NodeCap.VOLUME_CONDITION):
        if not reply.HasField("volume_condition"):
            raise CheckFailed("node VOLUME_CONDITION is advertised but volume_condition is missing")
        if reply.volume_condition.abnormal:
            raise CheckFailed(
                f"a freshly published volume is abnormal: {reply.volume_condition.message}"
            )


def _check_unpublished(a: Attached) -> None:
    if os.path.lexists(a.target_path):
        raise CheckFailed("NodeUnpublishVolume left the target path behind (the SP MUST delete it)")


def _check_detached(a: Attached) -> None:
    _check_unpublished(a)
    if a.staging_path and os.path.ismount(a.staging_path):
        raise CheckFailed("NodeUnstageVolume left a mount at the staging path")


def lifecycle_mount(d: Driver, r: Resources) -> None:
    """create -> controller publish -> stage -> publish -> write and read a file -> stats ->
    unpublish -> unstage -> controller unpublish -> delete."""
    d.require_controller(_CREATE)
    volume = r.new_volume("mount")
    a = attach(d, r, volume, mount_capability())
    write_file(a)
    _check_stats(d, a, block=False)
    detach(d, r, a)
    _check_detached(a)
    r.delete_volume(volume.volume_id)


def lifecycle_block(d: Driver, r: Resources) -> None:
    """The same lifecycle for a block volume: the target path is a block device of the
    volume's size; bytes written at its start and end read back."""
    d.require_controller(_CREATE)
    cap = block_capability()
    volume = r.new_volume("block", capabilities=[cap])
    a = attach(d, r, volume, cap)
    mode = os.stat(a.target_path).st_mode
    if not stat.S_ISBLK(mode):
        raise CheckFailed(f"the block volume's target path is not a block device ({mode:o})")
    pattern = os.urandom(BLOCK_PATTERN_SIZE)
    fd = os.open(a.target_path, os.O_RDWR)
    try:
        size = os.lseek(fd, 0, os.SEEK_END)
        if volume.capacity_bytes and size != volume.capacity_bytes:
            raise CheckFailed(
                f"the block device has {size} bytes, the volume {volume.capacity_bytes}"
            )
        offsets = (0, size - BLOCK_PATTERN_SIZE)
        for offset in offsets:
            os.pwrite(fd, pattern, offset)
        os.fsync(fd)
    finally:
        os.close(fd)
    fd = os.open(a.target_path, os.O_RDONLY)
    try:
        for offset in offsets:
            if os.pread(fd, BLOCK_PATTERN_SIZE, offset) != pattern:
                raise CheckFailed(f"bytes written at offset {offset} read back differently")
    finally:
        os.close(fd)
    _check_stats(d, a, block=True)
    detach(d, r, a)
    _check_detached(a)
    r.delete_volume(volume.volume_id)


def stats_not_at_path(d: Driver, r: Resources) -> None:
    """NodeGetVolumeStats of a published volume at a path it is not at (an existing directory
    next to its target path) is NOT_FOUND: "volume does not exist on specified volume_path"."""
    d.require_controller(_CREATE)
    d.require_node(_STATS)
    volume = r.new_volume("statswhere")
    a = attach(d, r, volume, mount_capability())
    elsewhere = csi_pb2.NodeGetVolumeStatsRequest(
        volume_id=a.volume_id, volume_path=os.path.dirname(a.target_path)
    )
    d.expect_error(Code.NOT_FOUND, "NodeGetVolumeStats", elsewhere, "at a path it is not at")
    detach(d, r, a)


def node_idempotency(d: Driver, r: Resources) -> None:
    """Stage twice: OK; stage again as block at the same path: ALREADY_EXISTS; publish without
    staging path: FAILED_PRECONDITION; publish twice: OK; publish again read-only at the same
    target: ALREADY_EXISTS; unpublish twice: OK and the target is gone; unstage twice: OK."""
    d.require_controller(_CREATE)
    volume = r.new_volume("nodeidem")
    a = attach(d, r, volume, mount_capability(), publish=False)
    if a.staging_path:
        r.call("NodeStageVolume", stage_request(a), "repeated")
        conflicting = stage_request(a)
        conflicting.volume_capability.CopyFrom(block_capability())
        r.expect_error(
            Code.ALREADY_EXISTS, "NodeStageVolume", conflicting, "again as block, same path"
        )
        unstaged = publish_request(a)
        unstaged.staging_target_path = ""
        r.expect_error(
            Code.FAILED_PRECONDITION, "NodePublishVolume", unstaged, "without staging path"
        )
    r.call("NodePublishVolume", publish_request(a))
    r.call("NodePublishVolume", publish_request(a), "repeated")
    r.expect_error(
        Code.ALREADY_EXISTS,
        "NodePublishVolume",
        publish_request(a, readonly=True),
        "again read-only at the same target",
    )
    unpublish = csi_pb2.NodeUnpublishVolumeRequest(volume_id=a.volume_id, target_path=a.target_path)
    r.call("NodeUnpublishVolume", unpublish)
    _check_unpublished(a)
    r.call("NodeUnpublishVolume", unpublish, "repeated")
    if a.staging_path:
        unstage = csi_pb2.NodeUnstageVolumeRequest(
            volume_id=a.volume_id, staging_target_path=a.staging_path
        )
        r.call("NodeUnstageVolume", unstage)
        r.call("NodeUnstageVolume", unstage, "repeated")
        _check_detached(a)


def publish_readonly_mount(d: Driver, r: Resources) -> None:
    """NodePublishVolume with readonly=true: the SP MUST publish read-only, so writing
    through the target path fails."""
    d.require_controller(_CREATE)
    volume = r.new_volume("readonly")
    a = attach(d, r, volume, mount_capability(), publish=False)
    r.call("NodePublishVolume", publish_request(a, readonly=True))
    if not os.path.ismount(a.target_path):
        raise CheckFailed("NodePublishVolume(readonly) did not mount anything")
    try:
        with open(os.path.join(a.target_path, DATA_FILE), "wb") as handle:
            handle.write(b"must not be written")
    except OSError as exc:
        if exc.errno not in (errno.EROFS, errno.EACCES, errno.EPERM):
            raise CheckFailed(f"writing to a read-only volume failed oddly: {exc}") from None
    else:
        raise CheckFailed("a volume published read-only accepted a write")
    detach(d, r, a)


def restore_reads_data(d: Driver, r: Resources) -> None:
    """Data written through the node is in a snapshot: a volume restored from it, staged and
    published, holds the same file."""
    d.require_controller(_CREATE, ControllerCap.CREATE_DELETE_SNAPSHOT)
    volume = r.new_volume("snapdata")
    a = attach(d, r, volume, mount_capability())
    content = write_file(a)
    detach(d, r, a)
    name = unique_name("snapdata")
    snapshot = r.create_snapshot(volume.volume_id, name)
    wait_ready(d, r, snapshot, name)
    source = csi_pb2.VolumeContentSource(
        snapshot=csi_pb2.VolumeContentSource.SnapshotSource(snapshot_id=snapshot.snapshot_id)
    )
    restored = r.create_volume(d.volume_request(unique_name("restored"), source=source))
    b = attach(d, r, restored, mount_capability())
    if read_file(b) != content:
        raise CheckFailed("the volume restored from the snapshot holds other data")
    detach(d, r, b)


def clone_reads_data(d: Driver, r: Resources) -> None:
    """CLONE_VOLUME: a clone of a volume holds the data written to the source."""
    d.require_controller(_CREATE, ControllerCap.CLONE_VOLUME)
    volume = r.new_volume("clonedata")
    a = attach(d, r, volume, mount_capability())
    content = write_file(a)
    detach(d, r, a)
    source = csi_pb2.VolumeContentSource(
        volume=csi_pb2.VolumeContentSource.VolumeSource(volume_id=volume.volume_id)
    )
    clone = r.create_volume(d.volume_request(unique_name("clone"), source=source))
    b = attach(d, r, clone, mount_capability())
    if read_file(b) != content:
        raise CheckFailed("the clone holds other data than its source")
    detach(d, r, b)


CHECKS = (
    lifecycle_mount,
    lifecycle_block,
    stats_not_at_path,
    node_idempotency,
    publish_readonly_mount,
    restore_reads_data,
    clone_reads_data,
)
