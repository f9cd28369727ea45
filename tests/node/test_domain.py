"""Node domain pieces on their own: identity sources, discovery by serial, mountinfo, flags.

NVMe discovery runs against a sysfs tree built in a temp dir (this machine has no NVMe disks)
whose device nodes are real: ``mknod`` with a real loop device's numbers, so the finder's
"is it a block device with the numbers sysfs reports" check is exercised for real.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from oxide_csi.errors import InvalidArgument, Unavailable
from oxide_csi.node.device_identity import (
    LoopBackingFileSource,
    NvmeSerialSource,
    check_expected_serial,
    identity_sources,
    serial_from_disk_name,
)
from oxide_csi.node.devices import DeviceFinder
from oxide_csi.node.mountinfo import parse_line
from oxide_csi.node.mounts import check_mount_flags
from oxide_csi.volume_contract import is_managed_serial
from tests.node.conftest import SERIAL_A, SERIAL_B
from tests.node.plane import Plane

pytestmark = pytest.mark.root


def test_serials() -> None:
    assert serial_from_disk_name("csi-0123456789abcdef-my-volume") == SERIAL_A
    assert serial_from_disk_name("boot") == "boot"
    assert check_expected_serial("boot    \x00\n") == "boot"
    for bad in ("", "   ", "x" * 21, "a\tb"):
        with pytest.raises(InvalidArgument):
            check_expected_serial(bad)
    with pytest.raises(InvalidArgument):
        serial_from_disk_name("dísk")


def test_identity_sources_follow_the_settings(tmp_path: Path) -> None:
    (nvme,) = identity_sources(None)
    assert isinstance(nvme, NvmeSerialSource)
    (loop,) = identity_sources(tmp_path)
    assert isinstance(loop, LoopBackingFileSource)
    assert not nvme.handles("loop0") and not loop.handles("nvme0n1")
    assert nvme.handles("nvme0n1") and not nvme.handles("nvme0c0n1")
    assert not nvme.handles("nvme0n1p1")


def test_mountinfo_line() -> None:
    line = (
        r"36 35 98:0 /mnt1 /mnt\040with\040space\040(deleted) rw,noatime master:1"
        " - ext3 /dev/root rw,errors=continue"
    )
    info = parse_line(line)
    assert (info.major, info.minor, info.root) == (98, 0, "/mnt1")
    assert info.mount_point == "/mnt with space"
    assert info.deleted
    assert info.fs_type == "ext3" and info.source == "/dev/root"
    assert info.options == ("rw", "noatime")
    assert not info.read_only
    with pytest.raises(ValueError):
        parse_line("1 2 3:4 / /x rw")


def test_mount_flags() -> None:
    assert check_mount_flags(["noatime", " ", "nosuid,nodev", 'context="a,b"']) == (
        "noatime",
        "nosuid,nodev",
        'context="a,b"',
    )
    for bad in (["bind"], ["ro,remount"], ["rbind"], ["-t"], ["a\nb"], ["make-shared"]):
        with pytest.raises(InvalidArgument):
            check_mount_flags(bad)


def fake_nvme(
    root: Path, name: str, serial: str, rdev: int, *, node_rdev: int | None = None
) -> None:
    """One NVMe namespace in a fake sysfs (and its node in a fake /dev)."""
    block = root / "sys" / "block" / name
    (block / "device").mkdir(parents=True)
    (block / "device" / "serial").write_text(serial.ljust(20) + "\n")
    major, minor = os.major(rdev), os.minor(rdev)
    (block / "dev").write_text(f"{major}:{minor}\n")
    (block / "size").write_text("131072\n")
    numbers = root / "sys" / "dev" / "block"
    numbers.mkdir(parents=True, exist_ok=True)
    (numbers / f"{major}:{minor}").symlink_to(block)
    (root / "dev").mkdir(exist_ok=True)
    os.mknod(root / "dev" / name, stat.S_IFBLK | 0o600, node_rdev if node_rdev else rdev)


def test_nvme_discovery_and_slot_accounting(plane: Plane) -> None:
    disk_a, disk_b, boot = (plane.attach(s) for s in (SERIAL_A, SERIAL_B, "boot-disk"))
    root = plane.base / "fake"
    rdev_a, rdev_b, rdev_boot = (os.stat(lp.device).st_rdev for lp in (disk_a, disk_b, boot))
    fake_nvme(root, "nvme0n1", "instance-boot", rdev_boot)
    fake_nvme(root, "nvme1n1", SERIAL_A, rdev_a)
    fake_nvme(root, "nvme2n1", SERIAL_B, rdev_b, node_rdev=rdev_a)  # a stale node
    finder = DeviceFinder(sysfs_root=root / "sys", dev_root=root / "dev", timeout=0.2)

    found = finder.find(SERIAL_A)
    assert found is not None
    assert (found.name, found.kind, found.path) == ("nvme1n1", "nvme", root / "dev" / "nvme1n1")
    assert finder.find(SERIAL_B) is None, "a node whose numbers do not match is not trusted"
    assert finder.find("csi-ffffffffffffffff") is None
    with pytest.raises(Unavailable, match="appeared"):
        finder.wait_for("csi-ffffffffffffffff")

    assert finder.verify(root / "dev" / "nvme1n1", SERIAL_A).serial == SERIAL_A
    with pytest.raises(Unavailable, match="expected"):
        finder.verify(root / "dev" / "nvme0n1", SERIAL_A)
    with pytest.raises(Unavailable, match="does not exist"):
        finder.verify(root / "dev" / "nvme9n1", SERIAL_A)

    assert finder.unmanaged_disk_count(is_managed_serial) == 1  # the boot disk

    # Two namespaces claiming one serial: refusing beats guessing.
    spare = plane.attach("spare")
    fake_nvme(root, "nvme3n1", SERIAL_A, os.stat(spare.device).st_rdev)
    with pytest.raises(Unavailable, match="several"):
        finder.find(SERIAL_A)
    (root / "sys" / "block" / "nvme3n1" / "hidden").write_text("1\n")
    assert finder.find(SERIAL_A) is not None, "hidden (multipath) nodes are skipped"


def test_loop_identity_survives_unlinking_the_backing_file(plane: Plane) -> None:
    """Dev mode may unlink a disk's link while it is attached; the device still is that disk."""
    loop = plane.attach(SERIAL_A)
    finder = DeviceFinder(sources=identity_sources(plane.device_dir), timeout=0)
    assert finder.verify(loop.device, SERIAL_A).kind == "loop"
    loop.backing.unlink()
    assert finder.verify(loop.device, SERIAL_A).serial == SERIAL_A
    other = DeviceFinder(sources=identity_sources(plane.base), timeout=0)
    with pytest.raises(Unavailable, match="identity"):
        other.verify(loop.device, SERIAL_A)
