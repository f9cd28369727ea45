"""Full lifecycles over real gRPC on real loop devices: stage, publish, use, tear down, again."""

from __future__ import annotations

import asyncio
import errno
import os
import stat

import pytest

from oxide_csi.node.mountinfo import read_mountinfo
from tests.node.conftest import SERIAL_A, Node, block_cap, mount_cap
from tests.node.plane import MIB, run

pytestmark = pytest.mark.root


def mount_at(path: os.PathLike[str] | str) -> list[str]:
    """fs types mounted exactly at ``path``."""
    return [m.fs_type for m in read_mountinfo() if m.mount_point == str(path)]


@pytest.mark.parametrize(("fs", "size"), [("ext4", 64 * MIB), ("xfs", 320 * MIB)])
async def test_mount_lifecycle(node: Node, fs: str, size: int) -> None:
    plane = node.plane
    loop = plane.attach(SERIAL_A, size)
    staging, target, target_ro = plane.staging(), plane.target("pod1"), plane.target("pod2")
    cap = mount_cap(fs)

    for _ in range(2):  # the second call of each kind must be a no-op success
        await node.stage(staging, cap)
    assert mount_at(staging) == [fs]
    uuid = loop.signature()["UUID"]
    assert loop.signature()["TYPE"] == fs

    for _ in range(2):
        await node.publish(staging, target, cap)
    for _ in range(2):
        await node.publish(staging, target_ro, cap, readonly=True)
    (target / "hello.txt").write_text("written before unstage")
    with pytest.raises(OSError) as refused:
        (target_ro / "nope.txt").write_text("x")
    assert refused.value.errno == errno.EROFS
    assert (target_ro / "hello.txt").read_text() == "written before unstage"

    for path in (target, target_ro):
        for _ in range(2):
            await node.unpublish(path)
        assert not path.exists(), "unpublish removes the target it created"
    for _ in range(2):
        await node.unstage(staging)
    assert plane.mounts() == [], "nothing stays mounted"
    assert staging.is_dir(), "the CO's staging directory is left for the CO"

    # Restage the same disk, still described as "blank": it must be mounted, not reformatted.
    await node.stage(staging, cap)
    await node.publish(staging, target, cap)
    assert (target / "hello.txt").read_text() == "written before unstage"
    assert loop.signature()["UUID"] == uuid
    await node.unpublish(target)
    await node.unstage(staging)
    assert plane.mounts() == []


async def test_unspecified_fs_type_formats_ext4_and_mounts_what_is_there(node: Node) -> None:
    plane = node.plane
    blank = plane.attach(SERIAL_A)
    staging = plane.staging()
    await node.stage(staging, mount_cap(""))
    assert blank.signature()["TYPE"] == "ext4"
    await node.unstage(staging)

    # A restored disk carrying xfs, with no type asked for anywhere: mounted as xfs.
    restored = plane.attach("csi-00000000000000b0", 320 * MIB)
    run("mkfs.xfs", "-q", str(restored.device))
    other = plane.staging("restored")
    await node.stage(other, mount_cap(""), serial="csi-00000000000000b0", source="snapshot")
    assert mount_at(other) == ["xfs"]
    await node.unstage(other, volume_id="vol-a")


async def test_fs_type_from_volume_context_is_used_for_formatting(node: Node) -> None:
    loop = node.plane.attach(SERIAL_A, 320 * MIB)
    staging = node.plane.staging()
    await node.stage(staging, mount_cap(""), fs="xfs")
    assert loop.signature()["TYPE"] == "xfs"
    await node.unstage(staging)


async def test_mount_flags_reach_the_mount(node: Node) -> None:
    node.plane.attach(SERIAL_A)
    staging, target = node.plane.staging(), node.plane.target()
    cap = mount_cap("ext4", flags=("noatime", "nosuid"))
    await node.stage(staging, cap)
    await node.publish(staging, target, cap)
    for path in (staging, target):
        (mount,) = [m for m in read_mountinfo() if m.mount_point == str(path)]
        assert {"noatime", "nosuid"} <= set(mount.options), mount.options
    await node.unpublish(target)
    await node.unstage(staging)


async def test_block_lifecycle(node: Node) -> None:
    plane = node.plane
    loop = plane.attach(SERIAL_A)
    staging = plane.staging()
    target, target_ro = plane.target("pod1"), plane.target("pod2")
    cap = block_cap()

    for _ in range(2):
        await node.stage(staging, cap)
    assert plane.mounts() == [], "a block volume is verified at stage, not mounted"
    assert loop.signature() == {}, "and certainly not formatted"

    for _ in range(2):
        await node.publish(staging, target, cap)
    for _ in range(2):
        await node.publish(staging, target_ro, cap, readonly=True)
    assert stat.S_ISBLK(os.stat(target).st_mode)
    assert os.stat(target).st_rdev == os.stat(loop.device).st_rdev

    payload = b"raw block bytes" * 100
    fd = os.open(target, os.O_WRONLY)
    try:
        os.pwrite(fd, payload, 3 * MIB)
        os.fsync(fd)
    finally:
        os.close(fd)
    assert loop.read(3 * MIB, len(payload)) == payload
    (ro_mount,) = [m for m in read_mountinfo() if m.mount_point == str(target_ro)]
    assert "ro" in ro_mount.options
    # A read-only mount does not stop writes through a device node (the kernel checks it for
    # files and directories only); kubelet enforces read-only block volumes with the
    # container's device permission "r". Pinned here so the docstring stays honest.
    os.close(os.open(target_ro, os.O_WRONLY))

    stats = await node.stats(str(target))
    assert [(u.unit, u.total) for u in stats.usage] == [(1, 64 * MIB)]
    assert not stats.volume_condition.abnormal

    for path in (target, target_ro):
        for _ in range(2):
            await node.unpublish(path)
        assert not path.exists()
    for _ in range(2):
        await node.unstage(staging)
    assert plane.mounts() == []
    assert loop.read(3 * MIB, len(payload)) == payload


async def test_stage_waits_for_the_device_to_appear(node: Node) -> None:
    """The attach may finish after kubelet's first NodeStage: bounded backoff bridges it."""
    staging = node.plane.staging()
    stage = asyncio.create_task(node.stage(staging, mount_cap("ext4")))
    await asyncio.sleep(0.3)
    assert not stage.done()
    node.plane.attach(SERIAL_A)
    await stage
    assert mount_at(staging) == ["ext4"]
    await node.unstage(staging)


@pytest.mark.parametrize(("fs", "small", "large"), [("ext4", 64, 192), ("xfs", 320, 640)])
async def test_stage_grows_a_restored_filesystem_to_the_disk(
    node: Node, fs: str, small: int, large: int
) -> None:
    """A disk restored from a snapshot into a larger size: the filesystem fills the disk."""
    loop = node.plane.attach(SERIAL_A, small * MIB)
    run(f"mkfs.{fs}", "-q", str(loop.device))
    loop.grow(large * MIB)
    staging = node.plane.staging()
    await node.stage(staging, mount_cap(fs), source="snapshot")
    vfs = os.statvfs(staging)
    # Well past the old size (statvfs leaves out XFS's internal log, so not all of it).
    assert vfs.f_blocks * vfs.f_frsize > (small + large) // 2 * MIB
    await node.unstage(staging)
    await node.stage(staging, mount_cap(fs), source="snapshot")  # and once grown, stays so
    await node.unstage(staging)


async def test_read_only_stage_publishes_read_only_and_stays_idempotent(node: Node) -> None:
    """Staged with the "ro" mount flag: every bind of it is read-only too, and a repeated
    publish (asking rw, as kubelet does) is recognised as the same publish."""
    loop = node.plane.attach(SERIAL_A)
    run("mkfs.ext4", "-q", str(loop.device))
    staging, target = node.plane.staging(), node.plane.target()
    cap = mount_cap("ext4", flags=("noatime,ro",))
    run("debugfs", "-w", "-R", "ssv state 0", str(loop.device))  # would need a (writing) check
    await node.stage(staging, cap, source="snapshot")
    for _ in range(2):
        await node.publish(staging, target, cap)
    with pytest.raises(OSError) as refused:
        (target / "x").write_text("x")
    assert refused.value.errno == errno.EROFS
    await node.unpublish(target)
    await node.unstage(staging)


async def test_read_only_publish_keeps_every_mount_flag(node: Node) -> None:
    """A read-only bind is a bind plus a remount, which drops every flag it is not given: the
    pod's read-only view must still be nosuid,nodev,noexec, and carry what the publish asks."""
    node.plane.attach(SERIAL_A)
    staging, target, target_ro = node.plane.staging(), node.plane.target(), node.plane.target("ro")
    await node.stage(staging, mount_cap("ext4", flags=("nosuid,nodev,noexec",)))
    asked = mount_cap("ext4", flags=("nosuid,nodev,noexec", "noatime"))
    for _ in range(2):
        await node.publish(staging, target_ro, asked, readonly=True)
        await node.publish(staging, target, asked)
    for path, mode in ((target_ro, "ro"), (target, "rw")):
        (mount,) = [m for m in read_mountinfo() if m.mount_point == str(path)]
        assert {mode, "nosuid", "nodev", "noexec", "noatime"} <= set(mount.options), mount.options
    for path in (target, target_ro):
        await node.unpublish(path)
    await node.unstage(staging)


async def test_ext4_reserves_no_blocks_for_root(node: Node) -> None:
    loop = node.plane.attach(SERIAL_A)
    staging = node.plane.staging()
    await node.stage(staging, mount_cap("ext4"))
    header = run("dumpe2fs", "-h", str(loop.device)).stdout
    (reserved,) = [line for line in header.splitlines() if line.startswith("Reserved block count")]
    assert reserved.split(":")[1].strip() == "0", reserved
    await node.unstage(staging)
