"""Loop devices: list them from sysfs, bind one with ``losetup``, detach one.

Why sysfs for listing rather than ``losetup --list``: sysfs is what the node reads too (the
basename of ``loop/backing_file`` is the device's identity), so the device plane sees exactly
what the node sees, and a listing never fails because one device vanished mid-scan.

Why ``--direct-io=off``: the simulator reads the same inode through the page cache when it
snapshots a disk (sparse copy of ``disks/<id>.img``). With buffered I/O on both sides a snapshot
of an attached disk sees every write the guest's filesystem has flushed to the loop device.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

#: Suffix the kernel appends to ``backing_file`` once the file's name was unlinked.
DELETED_SUFFIX = " (deleted)"
_TIMEOUT = 30.0


class DevicePlaneError(RuntimeError):
    """A loop device or a link could not be set up or torn down. The message names which."""


@dataclass(frozen=True)
class LoopDevice:
    """A bound loop device as sysfs shows it."""

    #: Kernel name, e.g. ``loop3``.
    name: str
    #: ``major:minor`` numbers, to match it against mountinfo.
    major: int
    minor: int
    #: Absolute path of the backing file as it was named when bound.
    backing: Path
    #: The backing file's name was unlinked after binding (the data is still served).
    deleted: bool

    @property
    def dev_path(self) -> Path:
        return Path("/dev") / self.name


def list_loops(sys_root: Path = Path("/sys")) -> list[LoopDevice]:
    """Every bound loop device; unbound ones (no ``loop`` directory) are skipped."""
    found: list[LoopDevice] = []
    block = sys_root / "block"
    try:
        names = sorted(os.listdir(block))
    except FileNotFoundError:
        return found
    for name in names:
        if not name.startswith("loop"):
            continue
        try:
            text = (block / name / "loop" / "backing_file").read_text(errors="surrogateescape")
            major_s, minor_s = (block / name / "dev").read_text().strip().split(":")
        except (FileNotFoundError, ValueError):
            continue  # unbound, or detached while we looked
        text = text.rstrip("\n")
        deleted = text.endswith(DELETED_SUFFIX)
        if deleted:
            text = text[: -len(DELETED_SUFFIX)]
        found.append(LoopDevice(name, int(major_s), int(minor_s), Path(text), deleted))
    return found


def loops_backed_in(directory: Path, sys_root: Path = Path("/sys")) -> list[LoopDevice]:
    """The loop devices whose backing file lies directly in ``directory``.

    ``directory`` is compared after resolving symlinks, as the kernel records the resolved path.
    """
    real = Path(os.path.realpath(directory))
    return [loop for loop in list_loops(sys_root) if loop.backing.parent == real]


def _losetup(args: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["losetup", *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=_TIMEOUT,
            env={**os.environ, "LC_ALL": "C"},
            check=False,
        )
    except FileNotFoundError:
        raise DevicePlaneError("losetup is not installed (package util-linux)") from None
    except subprocess.TimeoutExpired:
        raise DevicePlaneError(f"losetup {' '.join(args)} did not finish in time") from None


def attach(path: Path, read_only: bool = False) -> str:
    """Bind a free loop device to ``path``; returns its kernel name (``loop3``)."""
    args = ["--find", "--show", "--direct-io=off"]
    if read_only:
        args.append("--read-only")
    result = _losetup([*args, str(path)])
    if result.returncode != 0:
        message = (result.stderr or result.stdout).strip() or f"exit {result.returncode}"
        raise DevicePlaneError(f"losetup could not bind {path}: {message}")
    device = result.stdout.strip()
    if not device.startswith("/dev/loop"):
        raise DevicePlaneError(f"losetup printed an unexpected device {device!r} for {path}")
    return device.rsplit("/", 1)[-1]


def detach(loop: LoopDevice, sys_root: Path = Path("/sys")) -> None:
    """Detach ``loop``. A device still held open (a lazily unmounted filesystem) is marked to
    detach itself when the last user goes (the kernel's autoclear); that counts as done."""
    result = _losetup(["--detach", str(loop.dev_path)])
    if result.returncode == 0:
        return
    if not (sys_root / "block" / loop.name / "loop" / "backing_file").exists():
        return  # gone already: detached by someone else, or autoclear finished
    message = (result.stderr or result.stdout).strip() or f"exit {result.returncode}"
    raise DevicePlaneError(f"losetup could not detach {loop.dev_path}: {message}")
