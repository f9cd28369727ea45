"""The node never destroys data: what it refuses to format, and which device it refuses to use."""

from __future__ import annotations

import os
from pathlib import Path

import grpc
import pytest

from oxide_csi.errors import Unavailable
from oxide_csi.node.device_identity import LoopBackingFileSource
from oxide_csi.node.devices import DeviceFinder
from oxide_csi.node.mounts import Mounter
from oxide_csi.node.stage import Stager
from tests.node.conftest import SERIAL_A, SERIAL_B, Node, NodeFactory, block_cap, mount_cap
from tests.node.plane import MIB, Plane, run
from tests.rpc import code_of, error_of

pytestmark = pytest.mark.root


async def test_existing_filesystem_is_never_reformatted(node: Node) -> None:
    """A "blank" disk that holds xfs, staged as ext4: refused, and the xfs is untouched."""
    loop = node.plane.attach(SERIAL_A, 320 * MIB)
    run("mkfs.xfs", "-q", str(loop.device))
    before = loop.signature()
    staging = node.plane.staging()
    err = await error_of(node.stage(staging, mount_cap("ext4"), source="blank"))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "xfs" in (err.details() or "")
    assert loop.signature() == before
    assert node.plane.mounts() == []


@pytest.mark.parametrize("offset", [4096, 64 * MIB - 8192])
async def test_blank_disk_holding_unrecognised_data_is_not_formatted(
    node: Node, offset: int
) -> None:
    """No signature blkid knows, but the first or last MiB is not zeros: not "empty"."""
    loop = node.plane.attach(SERIAL_A)
    data = os.urandom(4096)
    loop.write(offset, data)
    assert loop.signature() == {}
    code = await code_of(node.stage(node.plane.staging(), mount_cap("ext4")))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert loop.read(offset, 4096) == data
    assert loop.signature() == {}


async def test_empty_disk_not_known_to_be_new_is_not_formatted(node: Node) -> None:
    """Restored from a snapshot (or no context at all) yet empty: something is wrong; refuse."""
    loop = node.plane.attach(SERIAL_A)
    staging = node.plane.staging()
    for source in ("snapshot", "volume", ""):
        code = await code_of(node.stage(staging, mount_cap("ext4"), source=source))
        assert code == grpc.StatusCode.FAILED_PRECONDITION, source
    assert loop.signature() == {}
    assert node.plane.mounts() == []


async def test_other_signature_is_neither_formatted_nor_mounted(node: Node) -> None:
    loop = node.plane.attach(SERIAL_A)
    run("mkswap", str(loop.device))
    before = loop.signature()
    assert before["TYPE"] == "swap"
    err = await error_of(node.stage(node.plane.staging(), mount_cap("ext4")))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert loop.signature() == before


async def test_serial_that_no_device_carries_is_unavailable(node_factory: NodeFactory) -> None:
    """Nothing carries the serial: retry later -- and no other device is touched meanwhile."""
    async with node_factory(wait=0.3) as node:
        other = node.plane.attach(SERIAL_B)
        err = await error_of(node.stage(node.plane.staging(), mount_cap("ext4")))
        assert err.code() == grpc.StatusCode.UNAVAILABLE
        assert SERIAL_A in (err.details() or "")
        assert other.signature() == {}


async def test_file_with_the_serial_outside_the_device_dir_is_not_the_disk(
    node_factory: NodeFactory, plane: Plane
) -> None:
    elsewhere = plane.base / "elsewhere"
    elsewhere.mkdir()
    impostor = plane.attach(SERIAL_A, directory=elsewhere)
    async with node_factory(wait=0.3) as node:
        code = await code_of(node.stage(plane.staging(), mount_cap("ext4")))
        assert code == grpc.StatusCode.UNAVAILABLE
    assert impostor.signature() == {}


def test_device_path_carrying_another_serial_is_refused(plane: Plane) -> None:
    """The device found for serial A was rebound to disk B before use: verify catches it."""
    disk_b = plane.attach(SERIAL_B)
    finder = DeviceFinder(sources=(LoopBackingFileSource(plane.device_dir),), timeout=0)
    stager = Stager(finder, Mounter())
    with pytest.raises(Unavailable, match="expected 'csi-0123456789abcdef'"):
        stager.stage_filesystem(disk_b.device, SERIAL_A, plane.staging(), "ext4", known_new=True)
    with pytest.raises(Unavailable):
        stager.stage_block(disk_b.device, SERIAL_A, plane.staging())
    assert disk_b.signature() == {}
    assert plane.mounts() == []


async def test_unreadable_device_is_refused_without_formatting(
    node_factory: NodeFactory, plane: Plane
) -> None:
    """Every read of the device fails (its backing file's filesystem was shut down). blkid then
    says "nothing found" exactly as for a blank disk; the node must not believe it."""
    holder = plane.holder()
    loop = plane.attach(SERIAL_A)
    run("xfs_io", "-x", "-c", "shutdown", str(plane.device_dir))
    run("blockdev", "--flushbufs", str(loop.device))  # nothing may be answered from cache
    assert run("blkid", "-p", str(loop.device), check=False).returncode == 2
    async with node_factory() as node:
        staging = plane.staging()
        err = await error_of(node.stage(staging, mount_cap("ext4"), source="blank"))
        assert err.code() == grpc.StatusCode.UNAVAILABLE
        assert "cannot read" in (err.details() or "")
        assert await code_of(node.stage(staging, block_cap())) == grpc.StatusCode.UNAVAILABLE
    # Bring the holder back (log recovery on mount) and look at the bytes: never written.
    plane.detach(loop)
    run("umount", str(plane.device_dir))
    run("mount", "-t", "xfs", str(holder.device), str(plane.device_dir))
    backing: Path = plane.device_dir / SERIAL_A
    with open(backing, "rb") as fh:
        assert fh.read(1 * MIB) == bytes(1 * MIB)


def corrupt_ext(loop_device: Path, mount_point: Path) -> None:
    """An ext filesystem left "not clean" with two files claiming one block: a crash plus
    corruption, which ``e2fsck -p`` must refuse to repair on its own."""
    run("mkfs.ext4", "-q", "-O", "^extent,^64bit", str(loop_device))
    mount_point.mkdir(exist_ok=True)
    run("mount", str(loop_device), str(mount_point))
    (mount_point / "a").write_bytes(os.urandom(8192))
    (mount_point / "b").write_bytes(os.urandom(8192))
    run("umount", str(mount_point))
    block = run("debugfs", "-R", "bmap /a 0", str(loop_device)).stdout.strip()
    run("debugfs", "-w", "-R", f"sif /b block[0] {block}", str(loop_device))
    run("debugfs", "-w", "-R", "ssv state 0", str(loop_device))


async def test_filesystem_needing_manual_repair_is_refused(node: Node) -> None:
    loop = node.plane.attach(SERIAL_A)
    corrupt_ext(loop.device, node.plane.base / "scratch")
    before = loop.signature()
    err = await error_of(node.stage(node.plane.staging(), mount_cap("ext4"), source="snapshot"))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "manual" in (err.details() or "")
    assert loop.signature() == before
    assert node.plane.mounts() == []


async def test_unclean_but_consistent_filesystem_is_checked_and_mounted(node: Node) -> None:
    """A disk snapshotted while mounted is "not clean": preened by e2fsck, then mounted.
    e2fsck resets the mount count, which is how the test sees that the check ran."""
    loop = node.plane.attach(SERIAL_A)
    run("mkfs.ext4", "-q", str(loop.device))
    scratch = node.plane.base / "scratch"
    scratch.mkdir()
    for _ in range(2):
        run("mount", str(loop.device), str(scratch))
        run("umount", str(scratch))
    run("debugfs", "-w", "-R", "ssv state 0", str(loop.device))
    staging = node.plane.staging()
    await node.stage(staging, mount_cap("ext4"), source="snapshot")
    await node.unstage(staging)
    fields = dict(
        line.split(":", 1)
        for line in run("dumpe2fs", "-h", str(loop.device)).stdout.splitlines()
        if ":" in line
    )
    assert fields["Mount count"].strip() == "1", "checked (count reset to 0), then mounted once"
    assert fields["Filesystem state"].strip() == "clean"
