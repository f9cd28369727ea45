"""The device directory: one hard link per attached disk, named by the disk's serial.

Why a hard link and not a symlink or the data file itself: the kernel records the path a loop
device was bound through (sysfs ``loop/backing_file``), resolving symlinks. A hard link named by
the serial makes that path end in the serial -- the dev-mode stand-in for the NVMe serial the
node checks -- while the data stays in the simulator's ``<disk_id>.img``, the same inode, so
writes through the loop device are what the simulator snapshots and what survives a restart.
Removing a link never removes data: the simulator's file keeps its own name.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from oxide_csi.devplane.loops import DevicePlaneError


class DeviceDir:
    """Links in ``devices`` to data files in ``data`` (the simulator's ``disk_data_dir``)."""

    def __init__(self, devices: Path, data: Path) -> None:
        self.devices = Path(devices)
        self.data = Path(data)

    def link_path(self, serial: str) -> Path:
        if not serial or "/" in serial or serial in (".", ".."):
            raise DevicePlaneError(f"serial {serial!r} cannot name a file")
        return self.devices / serial

    def data_path(self, disk_id: str) -> Path:
        return self.data / f"{disk_id}.img"

    def is_linked(self, serial: str, disk_id: str) -> bool:
        """Whether the link exists and is the very file holding ``disk_id``'s data."""
        try:
            return os.path.samefile(self.link_path(serial), self.data_path(disk_id))
        except OSError:
            return False

    def ensure_link(self, serial: str, disk_id: str, size: int) -> Path:
        """Make ``devices/<serial>`` the data file of ``disk_id``; returns the link's path.

        A missing data file is created sparse at ``size`` (the simulator makes one per disk, but
        a state directory copied without its data should still come up). A link left over for
        a different file is replaced.
        """
        self.devices.mkdir(parents=True, exist_ok=True)
        link = self.link_path(serial)
        data = self.data_path(disk_id)
        if not data.exists():
            self.data.mkdir(parents=True, exist_ok=True)
            try:
                with open(data, "xb") as fh:
                    fh.truncate(size)
            except FileExistsError:
                pass  # the simulator made it meanwhile; use that one
        if self.is_linked(serial, disk_id):
            return link
        self.remove(serial)
        try:
            os.link(data, link)
        except OSError as exc:
            raise DevicePlaneError(f"cannot link {link} to {data}: {exc.strerror}") from None
        return link

    def remove(self, serial: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.link_path(serial).unlink()

    def clear(self) -> None:
        """Remove every link (not the data they point to)."""
        if not self.devices.is_dir():
            return
        for entry in self.devices.iterdir():
            if entry.is_file() and not entry.is_symlink():
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()
