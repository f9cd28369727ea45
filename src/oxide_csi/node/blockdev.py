"""Small facts about a block device node: is it one, which kernel device is it, how big is it.

Every failure here is :class:`Unavailable`: a device node that vanished, turned into something
else or cannot be read is a state a retry may see fixed (the attach finishing, a rescan), and is
never a reason to carry on as if the device were fine.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import struct
from pathlib import Path

from oxide_csi.errors import Unavailable

# _IOR(0x12, 114, size_t): the device size in bytes.
BLKGETSIZE64 = 0x80081272


def stat_block_device(path: Path) -> os.stat_result:
    """``stat`` the node at ``path`` (following symlinks) and insist it is a block device."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise Unavailable(f"device {path} does not exist (detached or not yet attached?)") from None
    except OSError as exc:
        raise Unavailable(f"cannot stat device {path}: {exc.strerror}") from None
    if not stat.S_ISBLK(st.st_mode):
        raise Unavailable(f"{path} is not a block device")
    return st


def major_minor(st: os.stat_result) -> tuple[int, int]:
    return os.major(st.st_rdev), os.minor(st.st_rdev)


def sysfs_block_dir(sysfs_root: Path, major: int, minor: int) -> Path:
    """The sysfs directory of device ``major:minor``, found through ``<sysfs>/dev/block``.

    Going by number rather than by the node's name means a ``/dev`` entry with a misleading
    name (a stale node, a symlink) still leads to the device the kernel actually serves.
    """
    link = sysfs_root / "dev" / "block" / f"{major}:{minor}"
    try:
        return Path(os.path.realpath(link, strict=True))
    except OSError:
        raise Unavailable(f"no sysfs entry for block device {major}:{minor}") from None


def device_size(path: Path) -> int:
    """Size in bytes from the kernel (``BLKGETSIZE64``) -- what the device offers right now."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise Unavailable(f"cannot open device {path}: {exc.strerror}") from None
    try:
        buf = bytearray(8)
        fcntl.ioctl(fd, BLKGETSIZE64, buf)
        (size,) = struct.unpack("=Q", bytes(buf))
        return int(size)
    except OSError as exc:
        if exc.errno == errno.ENOTTY:
            raise Unavailable(f"{path} is not a block device") from None
        raise Unavailable(f"cannot read the size of {path}: {exc.strerror}") from None
    finally:
        os.close(fd)
