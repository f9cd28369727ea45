"""Where a block device's identity comes from, and what an expected serial looks like.

On Oxide each attached disk reaches the guest as its own NVMe controller whose serial number is
the first 20 bytes of the disk's name, space-padded to the field's width. That is the only
thing the guest can see that ties a device to an Oxide disk, so it is what the controller hands
the node (in ``publish_context``) and what the node checks before touching a device.

In dev mode one machine plays an Oxide instance and a disk is a loop device. Dev mode links the
disk's data file under the 20-byte serial before ``losetup``, so the backing file's basename
(shown by sysfs) plays the part of the NVMe serial.

Each source only *reads*; it answers ``None`` when the device is not one it knows, and raises
:class:`OSError` when it should know but cannot read -- the callers decide whether that is fatal
(verifying before mkfs) or just a device to skip (scanning for a different serial).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Protocol

from oxide_csi.errors import InvalidArgument
from oxide_csi.volume_contract import SERIAL_BYTES, serial_for

_LOOP_DELETED = " (deleted)"


def normalize_serial(raw: str) -> str:
    """A serial as compared: the padding (spaces, NULs, the newline sysfs adds) removed."""
    return raw.rstrip(" \t\r\n\x00")


def serial_from_disk_name(disk_name: str) -> str:
    """The serial a guest sees for an Oxide disk called ``disk_name``.

    Oxide names are ASCII, so cutting at 20 bytes never splits a character; a non-ASCII name
    is refused rather than guessed at.
    """
    try:
        raw = disk_name.encode("ascii")
    except UnicodeEncodeError:
        raise InvalidArgument(f"disk name {disk_name!r} is not ASCII") from None
    if not raw:
        raise InvalidArgument("disk name is empty")
    return normalize_serial(serial_for(disk_name))


def check_expected_serial(serial: str) -> str:
    """Validate a serial received from the controller and return it normalised.

    Refuses what could never match a real device (empty, too long, control characters), so a
    bad ``publish_context`` fails fast as a bad argument instead of as a slow device timeout.
    """
    value = normalize_serial(serial)
    if not value:
        raise InvalidArgument("expected device serial is empty")
    if len(value.encode("utf-8")) > SERIAL_BYTES:
        raise InvalidArgument(
            f"expected device serial {value!r} is longer than {SERIAL_BYTES} bytes"
        )
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise InvalidArgument(f"expected device serial {value!r} holds control characters")
    return value


class IdentitySource(Protocol):
    """Reads the identity of block devices of one kind from their sysfs directory."""

    @property
    def kind(self) -> str:
        """Short name for messages (``nvme``, ``loop``)."""
        ...

    def handles(self, kernel_name: str) -> bool:
        """Whether a disk with this kernel name (``nvme0n1``, ``loop3``) is this source's."""
        ...

    def read(self, block_dir: Path) -> str | None:
        """The normalised serial of the disk at ``block_dir`` (``<sysfs>/block/<name>``).

        ``None`` means the device has no identity of this kind (an unbound loop device);
        :class:`OSError` means it should have one but it cannot be read.
        """
        ...


class NvmeSerialSource:
    """NVMe namespaces: the controller's serial at ``<sysfs>/block/nvmeXnY/device/serial``."""

    # nvme0n1 yes; nvme0c0n1 (a hidden per-path node under native multipath) and partitions no.
    _NAME = re.compile(r"nvme\d+n\d+")

    @property
    def kind(self) -> str:
        return "nvme"

    def handles(self, kernel_name: str) -> bool:
        return self._NAME.fullmatch(kernel_name) is not None

    def read(self, block_dir: Path) -> str | None:
        raw = (block_dir / "device" / "serial").read_bytes()
        return normalize_serial(raw.decode("ascii", errors="replace"))


class LoopBackingFileSource:
    """Loop devices (dev mode): the basename of ``<sysfs>/block/loopN/loop/backing_file``.

    Only loop devices whose backing file lies directly in ``directory`` (dev mode's device
    directory) have an identity: any other loop device on the machine -- snap packages, another
    tool's images, a test's scratch file that happens to carry a serial-like name -- is not a
    disk of the simulated instance and must neither match nor use up a slot.

    An unbound loop device has no ``loop`` directory and so no identity. When the backing file's
    name was unlinked while bound the kernel appends `` (deleted)``; the device still serves the
    same data (the open inode), so the name it was bound under still identifies it.
    """

    _NAME = re.compile(r"loop\d+")

    def __init__(self, directory: Path) -> None:
        # Resolved once: the kernel reports the backing file by its resolved path.
        self.directory = Path(os.path.realpath(directory))

    @property
    def kind(self) -> str:
        return "loop"

    def handles(self, kernel_name: str) -> bool:
        return self._NAME.fullmatch(kernel_name) is not None

    def read(self, block_dir: Path) -> str | None:
        try:
            text = (block_dir / "loop" / "backing_file").read_text(errors="replace")
        except FileNotFoundError:
            return None
        text = text.rstrip("\n")
        if text.endswith(_LOOP_DELETED):
            text = text[: -len(_LOOP_DELETED)]
        parent, _, name = text.rpartition("/")
        if Path(parent or "/") != self.directory:
            return None
        return normalize_serial(name) or None


def identity_sources(loop_device_dir: Path | None) -> tuple[IdentitySource, ...]:
    """The sources a node uses: NVMe on a real instance, the dev device directory in dev mode.

    In dev mode this machine plays one simulated instance whose every disk (boot disk
    included) is a loop device in ``loop_device_dir``; the machine's own NVMe disks are not
    disks of that instance, so they are left out rather than counted against its slots.
    """
    if loop_device_dir is not None:
        return (LoopBackingFileSource(loop_device_dir),)
    return (NvmeSerialSource(),)
