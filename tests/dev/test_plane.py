"""The device plane on its own: real loop devices, real mkfs and mounts, no simulator.

The hooks are called the way the simulator calls them, with the API's JSON for the instance and
its disks.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from oxide_csi.devplane import DevicePlane, DevicePlaneError
from tests.dev.helpers import (
    ROOT_MARKS,
    bind_loop,
    detach_quietly,
    loops_in,
    mount_points_under,
    release_dev_state,
)

pytestmark = ROOT_MARKS

MIB = 1 << 20
INSTANCE = {"id": str(uuid.uuid4()), "name": "instance-0", "run_state": "starting"}


def disk(name: str, size: int = 64 * MIB, read_only: bool = False) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "name": name, "size": size, "read_only": read_only}


def make_data(root: Path, view: dict[str, Any]) -> Path:
    path = root / "disks" / f"{view['id']}.img"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.truncate(view["size"])
    return path


@pytest.fixture
def plane(short_tmp: Path) -> Iterator[DevicePlane]:
    made = DevicePlane("instance-0", short_tmp / "devices", short_tmp / "disks")
    yield made
    # whatever a failed test left: unmount and detach, so no loop device outlives the test
    release_dev_state(short_tmp)


def test_disks_become_loop_devices_named_by_serial_and_go_on_stop(
    plane: DevicePlane, short_tmp: Path
) -> None:
    boot = disk("instance-0-boot")
    data = disk("csi-0123456789abcdef-pvc-data-volume")
    boot_file = make_data(short_tmp, boot)
    make_data(short_tmp, data)

    plane.before_running(INSTANCE, [boot, data])
    loops = loops_in(short_tmp / "devices")
    # the serial is the first 20 bytes of the name, as the NVMe serial on a rack
    assert sorted(loops) == ["csi-0123456789abcdef", "instance-0-boot"]
    assert all(len(names) == 1 for names in loops.values())

    # a write through the device lands in the simulator's data file (same inode)
    device = f"/dev/{loops['instance-0-boot'][0]}"
    fd = os.open(device, os.O_WRONLY)
    try:
        os.pwrite(fd, b"written through the loop device", MIB)
        os.fsync(fd)
    finally:
        os.close(fd)
    with open(boot_file, "rb") as fh:
        fh.seek(MIB)
        assert fh.read(31) == b"written through the loop device"

    plane.after_stopped({**INSTANCE, "run_state": "stopped"}, [])
    assert loops_in(short_tmp / "devices") == {}
    assert list((short_tmp / "devices").iterdir()) == []
    assert boot_file.stat().st_size == boot["size"]  # data is kept
    assert b"written through" in boot_file.read_bytes()


def test_repeated_start_hook_binds_each_disk_once(plane: DevicePlane, short_tmp: Path) -> None:
    boot = disk("instance-0-boot")
    make_data(short_tmp, boot)
    plane.before_running(INSTANCE, [boot])
    first = loops_in(short_tmp / "devices")
    plane.before_running(INSTANCE, [boot])
    assert loops_in(short_tmp / "devices") == first

    # a disk no longer attached loses its device on the next start
    other = disk("instance-0-extra")
    make_data(short_tmp, other)
    plane.before_running(INSTANCE, [other])
    assert sorted(loops_in(short_tmp / "devices")) == ["instance-0-extra"]


def test_other_instances_are_not_ours(plane: DevicePlane, short_tmp: Path) -> None:
    other = {"id": str(uuid.uuid4()), "name": "instance-1", "run_state": "starting"}
    view = disk("instance-1-boot")
    make_data(short_tmp, view)
    plane.before_running(other, [view])
    assert loops_in(short_tmp / "devices") == {}

    mine = disk("instance-0-boot")
    make_data(short_tmp, mine)
    plane.before_running(INSTANCE, [mine])
    plane.after_stopped(other, [view])
    assert sorted(loops_in(short_tmp / "devices")) == ["instance-0-boot"]


def test_missing_data_file_is_created_sparse(plane: DevicePlane, short_tmp: Path) -> None:
    view = disk("lost-its-file", size=32 * MIB)
    plane.before_running(INSTANCE, [view])
    data = short_tmp / "disks" / f"{view['id']}.img"
    assert data.stat().st_size == 32 * MIB
    assert data.stat().st_blocks == 0  # sparse
    name = loops_in(short_tmp / "devices")["lost-its-file"][0]
    assert int(Path(f"/sys/block/{name}/size").read_text()) * 512 == 32 * MIB


def test_read_only_disk_is_a_read_only_device(plane: DevicePlane, short_tmp: Path) -> None:
    view = disk("read-only-disk", read_only=True)
    make_data(short_tmp, view)
    plane.before_running(INSTANCE, [view])
    name = loops_in(short_tmp / "devices")["read-only-disk"][0]
    assert Path(f"/sys/block/{name}/ro").read_text().strip() == "1"


def test_a_disk_that_cannot_be_bound_leaves_no_device_behind(
    plane: DevicePlane, short_tmp: Path
) -> None:
    good = disk("good-disk")
    make_data(short_tmp, good)
    bad = disk("bad-disk")
    (short_tmp / "disks" / f"{bad['id']}.img").mkdir()  # a directory cannot back a disk
    with pytest.raises(DevicePlaneError):
        plane.before_running(INSTANCE, [good, bad])
    assert loops_in(short_tmp / "devices") == {}


def test_stop_takes_mounts_away_like_a_power_off(plane: DevicePlane, short_tmp: Path) -> None:
    view = disk("mounted-disk")
    make_data(short_tmp, view)
    plane.before_running(INSTANCE, [view])
    device = f"/dev/{loops_in(short_tmp / 'devices')['mounted-disk'][0]}"
    subprocess.run(["mkfs.ext4", "-q", "-F", device], check=True, capture_output=True)
    fs_mount = short_tmp / "kubelet" / "staging"
    bind_target = short_tmp / "kubelet" / "block-target"
    fs_mount.mkdir(parents=True)
    bind_target.touch()
    subprocess.run(["mount", device, str(fs_mount)], check=True)
    subprocess.run(["mount", "--bind", device, str(bind_target)], check=True)
    (fs_mount / "file").write_text("kept")

    plane.after_stopped(INSTANCE, [view])
    assert mount_points_under(short_tmp) == []
    assert loops_in(short_tmp / "devices") == {}

    # the data survived: bound again, the filesystem still holds the file
    plane.before_running(INSTANCE, [view])
    device = f"/dev/{loops_in(short_tmp / 'devices')['mounted-disk'][0]}"
    subprocess.run(["mount", "-o", "ro", device, str(fs_mount)], check=True)
    try:
        assert (fs_mount / "file").read_text() == "kept"
    finally:
        subprocess.run(["umount", str(fs_mount)], check=True)


def test_busy_mount_is_detached_lazily_and_the_device_follows(
    plane: DevicePlane, short_tmp: Path
) -> None:
    view = disk("busy-disk")
    make_data(short_tmp, view)
    plane.before_running(INSTANCE, [view])
    name = loops_in(short_tmp / "devices")["busy-disk"][0]
    subprocess.run(["mkfs.ext4", "-q", "-F", f"/dev/{name}"], check=True, capture_output=True)
    point = short_tmp / "kubelet" / "busy"
    point.mkdir(parents=True)
    subprocess.run(["mount", f"/dev/{name}", str(point)], check=True)
    held = open(point / "held", "w")  # noqa: SIM115 - kept open on purpose: the mount is busy
    try:
        plane.after_stopped(INSTANCE, [view])
        assert mount_points_under(short_tmp) == []  # gone from the tree at once
    finally:
        held.close()
    # once the last user lets go, the kernel finishes the unmount and autoclears the device
    deadline = time.monotonic() + 10
    while loops_in(short_tmp / "devices") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert loops_in(short_tmp / "devices") == {}


def test_release_everything_reaps_a_crashed_run_and_nothing_else(
    plane: DevicePlane, short_tmp: Path
) -> None:
    # what a SIGKILLed run leaves: a link + loop device with a mount of it (and a bind mount of
    # that) under its kubelet dir -- beside mounts that are not its own: tmpfs pod volumes
    (short_tmp / "devices").mkdir()
    view = disk("left-behind")
    data = make_data(short_tmp, view)
    os.link(data, short_tmp / "devices" / "left-behind")
    stale = bind_loop(short_tmp / "devices" / "left-behind")
    subprocess.run(["mkfs.ext4", "-q", "-F", f"/dev/{stale}"], check=True, capture_output=True)
    kubelet = short_tmp / "kubelet"
    staged, published = kubelet / "staged", kubelet / "pods" / "b" / "vol"
    for point in (staged, published):
        point.mkdir(parents=True)
    subprocess.run(["mount", f"/dev/{stale}", str(staged)], check=True)
    subprocess.run(["mount", "--bind", str(staged), str(published)], check=True)
    (kubelet / "pods" / "a").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(kubelet / "pods" / "a")], check=True)
    (kubelet / "pods" / "a" / "nested").mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(kubelet / "pods" / "a" / "nested")])
    # somebody else's loop device, backed outside the device directory
    foreign_file = short_tmp / "foreign.img"
    with open(foreign_file, "wb") as fh:
        fh.truncate(16 * MIB)
    foreign = bind_loop(foreign_file)
    try:
        plane.release_everything()
        assert loops_in(short_tmp / "devices") == {}
        # only the mounts of our device went; the pod's tmpfs volumes are not ours
        assert mount_points_under(short_tmp) == [
            str(kubelet / "pods" / "a"),
            str(kubelet / "pods" / "a" / "nested"),
        ]
        assert list((short_tmp / "devices").iterdir()) == []
        assert data.exists()
        assert Path(f"/sys/block/{foreign}/loop/backing_file").exists()
        assert stale != foreign
    finally:
        detach_quietly(foreign)
