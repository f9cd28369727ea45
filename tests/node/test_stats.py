"""NodeGetVolumeStats: figures that match the kernel's, and an honest volume condition."""

from __future__ import annotations

import os

import grpc
import pytest

from oxide_csi.csi_v1 import csi_pb2
from tests.node.conftest import SERIAL_A, Node, mount_cap
from tests.node.plane import MIB, run
from tests.rpc import code_of

pytestmark = pytest.mark.root

BYTES, INODES = csi_pb2.VolumeUsage.BYTES, csi_pb2.VolumeUsage.INODES


async def test_filesystem_stats_and_conditions(node: Node) -> None:
    plane = node.plane
    plane.attach(SERIAL_A)
    staging, target = plane.staging(), plane.target()
    await node.stage(staging, mount_cap("ext4"))
    await node.publish(staging, target, mount_cap("ext4"))
    (target / "blob").write_bytes(os.urandom(4 * MIB))
    os.sync()

    for path in (target, staging):
        stats = await node.stats(str(path))
        usage = {u.unit: u for u in stats.usage}
        vfs = os.statvfs(path)
        assert usage[BYTES].total == vfs.f_blocks * vfs.f_frsize
        assert usage[BYTES].used >= 4 * MIB
        assert usage[BYTES].available == vfs.f_bavail * vfs.f_frsize
        assert usage[INODES].total == vfs.f_files
        assert usage[INODES].used == vfs.f_files - vfs.f_ffree
        assert not stats.volume_condition.abnormal
        assert stats.volume_condition.message

    # The mount vanished behind the plugin's back: the path exists, the volume is not there,
    # which the CSI spec answers with NOT_FOUND (no volume on that path), not with numbers.
    run("umount", str(target))
    assert await code_of(node.stats(str(target))) == grpc.StatusCode.NOT_FOUND

    await node.unpublish(target)
    code = await code_of(node.stats(str(target)))
    assert code == grpc.StatusCode.NOT_FOUND
    await node.unstage(staging)


async def test_filesystem_with_device_errors_is_abnormal(node: Node) -> None:
    """XFS shut down after an I/O error (forced here): reported abnormal, not as numbers."""
    plane = node.plane
    plane.attach(SERIAL_A, 320 * MIB)
    staging, target = plane.staging(), plane.target()
    await node.stage(staging, mount_cap("xfs"))
    await node.publish(staging, target, mount_cap("xfs"))
    run("xfs_io", "-x", "-c", "shutdown", str(target))
    stats = await node.stats(str(target))
    assert stats.volume_condition.abnormal
    assert "Input/output error" in stats.volume_condition.message
    await node.unpublish(target)
    await node.unstage(staging)
    assert plane.mounts() == []


async def test_missing_path_is_not_found(node: Node) -> None:
    code = await code_of(node.stats(str(node.plane.kubelet_dir / "pods" / "nothing")))
    assert code == grpc.StatusCode.NOT_FOUND
