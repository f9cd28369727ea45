"""What the dev-mode tests observe, read straight from the kernel (not through the plane)."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

#: Marks a test that makes real loop devices and mounts.
ROOT_MARKS = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (loop devices, mount)"),
]

_DELETED = " (deleted)"


def loops_in(devices: Path) -> dict[str, list[str]]:
    """Serial (backing file name) -> kernel names of loop devices backed in ``devices``."""
    real = os.path.realpath(devices)
    found: dict[str, list[str]] = {}
    for entry in sorted(Path("/sys/block").iterdir()):
        if not entry.name.startswith("loop"):
            continue
        try:
            backing = (entry / "loop" / "backing_file").read_text().rstrip("\n")
        except FileNotFoundError:
            continue
        backing = backing.removesuffix(_DELETED)
        if os.path.dirname(backing) == real:
            found.setdefault(os.path.basename(backing), []).append(entry.name)
    return found


def mount_points_under(directory: Path) -> list[str]:
    real = os.path.realpath(directory)
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), line.split()[4])
        if point == real or point.startswith(real + "/"):
            points.append(point)
    return points


def bind_loop(path: Path) -> str:
    """Bind a loop device by hand (as a crashed run would have left it); returns its name."""
    out = subprocess.run(
        ["losetup", "--find", "--show", str(path)], capture_output=True, text=True, check=True
    )
    return out.stdout.strip().rsplit("/", 1)[-1]


def detach_quietly(name: str) -> None:
    subprocess.run(["losetup", "-d", f"/dev/{name}"], capture_output=True, check=False)


def umount_quietly(path: Path | str) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def release_dev_state(state: Path) -> None:
    """Unmount everything under ``state`` and detach the loop devices of ``state/devices``:
    whatever a failed test left, so that no mount or loop device outlives it."""
    for point in reversed(mount_points_under(state)):
        umount_quietly(point)
    for names in loops_in(state / "devices").values():
        for name in names:
            detach_quietly(name)


def eventually(predicate: Callable[[], bool], what: str, limit: float = 30.0) -> None:
    """Wait for something dev mode does on its own after answering (a hot-unplugged device
    leaves the guest shortly after the API said yes); fail only if it never happens."""
    end = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.01)
