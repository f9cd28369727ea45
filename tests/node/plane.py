"""A small, real device plane for node tests: sparse files, loop devices, a kubelet directory.

Each test gets its own base directory holding a device directory (the files whose names are
the serials, as in dev mode) and a kubelet directory (where staging and target paths live).
Cleanup always runs, even after a failed test: everything mounted under the base directory is
unmounted (deepest first, lazily as a last resort), then every loop device this plane attached
is detached -- so no test can leave a mount or a loop device behind for the next one.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from oxide_csi.node.mountinfo import read_mountinfo

MIB = 1 << 20


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), capture_output=True, text=True, check=check, stdin=subprocess.DEVNULL
    )


@dataclass
class Loop:
    """One attached loop device and the file behind it."""

    device: Path
    backing: Path

    @property
    def name(self) -> str:
        return self.device.name

    def read(self, offset: int, length: int) -> bytes:
        fd = os.open(self.backing, os.O_RDONLY)
        try:
            return os.pread(fd, length, offset)
        finally:
            os.close(fd)

    def write(self, offset: int, data: bytes) -> None:
        """Write through the device (so the kernel's view is the one that changes)."""
        fd = os.open(self.device, os.O_WRONLY)
        try:
            os.pwrite(fd, data, offset)
            os.fsync(fd)
        finally:
            os.close(fd)

    def signature(self) -> dict[str, str]:
        """What ``blkid -p`` finds now ({} for nothing)."""
        out = run("blkid", "-p", "-o", "export", str(self.device), check=False).stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def grow(self, size: int) -> None:
        os.truncate(self.backing, size)
        run("losetup", "-c", str(self.device))


@dataclass
class Plane:
    base: Path
    loops: list[Loop] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.device_dir.mkdir(parents=True, exist_ok=True)
        self.kubelet_dir.mkdir(parents=True, exist_ok=True)

    @property
    def device_dir(self) -> Path:
        return self.base / "devices"

    @property
    def kubelet_dir(self) -> Path:
        return self.base / "kubelet"

    def staging(self, name: str = "vol") -> Path:
        path = self.kubelet_dir / "plugins" / "csi" / "pv" / name / "globalmount"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def target(self, pod: str = "pod1", name: str = "vol") -> Path:
        parent = self.kubelet_dir / "pods" / pod / "volumes" / "csi"
        parent.mkdir(parents=True, exist_ok=True)
        return parent / name

    def attach(self, serial: str, size: int = 64 * MIB, directory: Path | None = None) -> Loop:
        """A sparse file named ``serial`` (in the device directory unless told otherwise),
        attached to a fresh loop device."""
        backing = (directory or self.device_dir) / serial
        with open(backing, "wb") as fh:
            fh.truncate(size)
        return self.attach_file(backing)

    def attach_file(self, backing: Path) -> Loop:
        out = run("losetup", "--find", "--show", str(backing)).stdout.strip()
        loop = Loop(device=Path(out), backing=backing)
        self.loops.append(loop)
        return loop

    def detach(self, loop: Loop) -> None:
        run("losetup", "-d", str(loop.device), check=False)
        if loop in self.loops:
            self.loops.remove(loop)

    def mounts(self) -> list[str]:
        """Mount points under the base directory, in mount order."""
        base = str(self.base.resolve())
        return [
            m.mount_point
            for m in read_mountinfo()
            if m.mount_point == base or m.mount_point.startswith(base + "/")
        ]

    def holder(self, size: int = 320 * MIB) -> Loop:
        """Make the device directory itself an XFS filesystem (on a loop device of its own,
        backed outside the device directory), so a test can shut it down under a device."""
        holder = self.attach_file_sized(self.base / "holder.img", size)
        run("mkfs.xfs", "-q", str(holder.device))
        run("mount", "-t", "xfs", str(holder.device), str(self.device_dir))
        return holder

    def attach_file_sized(self, backing: Path, size: int) -> Loop:
        with open(backing, "wb") as fh:
            fh.truncate(size)
        return self.attach_file(backing)

    def cleanup(self) -> None:
        """Unmount, detach, unmount again: a loop device whose backing file lives on a
        filesystem under the base (see :meth:`holder`) must go before that filesystem can.
        ``losetup -d`` on a device still in use only marks it to go when released."""
        self._unmount_all(lazy=False)
        for loop in reversed(self.loops):
            run("losetup", "-d", str(loop.device), check=False)
        self.loops.clear()
        self._unmount_all(lazy=True)

    def _unmount_all(self, *, lazy: bool) -> None:
        for _ in range(3):
            points = self.mounts()
            if not points:
                return
            for point in reversed(points):
                if run("umount", point, check=False).returncode != 0 and lazy:
                    run("umount", "-l", point, check=False)
