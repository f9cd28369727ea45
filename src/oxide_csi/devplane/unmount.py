"""Take mounts away the way a power-off would, before a loop device goes.

In a real rack, stopping an instance is a hard power-off of the machine the node runs on: every
mount of every attached disk disappears with it. In dev mode the machine keeps running, so when
the simulated instance stops the device plane removes what a reboot would have removed: each
mount of a loop device it is about to detach (filesystem mounts of the device, and bind mounts
of the device node itself, which is how block volumes are published).

The unmount is a normal one first, so the filesystem is flushed and cleanly closed. If it is
busy (a shell sitting in the directory, a file held open) it falls back to a lazy unmount
(``MNT_DETACH``): the mount leaves the tree at once, as it would on a real power-off, and the
kernel finishes the unmount -- and the loop device's autoclear -- when the last user lets go.
Nothing is ever written or deleted below the mount point.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import structlog

from oxide_csi.devplane.loops import DevicePlaneError, LoopDevice
from oxide_csi.node.mountinfo import DEFAULT_MOUNTINFO, MountInfo, read_mountinfo

log = structlog.get_logger(__name__)

_MNT_DETACH = 2
#: Passes over mountinfo before giving up (stacked or nested mounts need more than one).
_MAX_PASSES = 8

_libc = ctypes.CDLL(None, use_errno=True)
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.umount2.restype = ctypes.c_int


def mounts_of(loop: LoopDevice, mounts: Iterable[MountInfo]) -> list[MountInfo]:
    """Mounts of ``loop``'s filesystem, and bind mounts of its device node (devtmpfs root)."""
    node_root = f"/{loop.name}"
    return [
        m
        for m in mounts
        if (m.major, m.minor) == (loop.major, loop.minor)
        or (m.fs_type == "devtmpfs" and m.root == node_root)
    ]


def unmount_point(path: str) -> None:
    """Unmount the top mount at ``path``: normally, else lazily if busy. Gone already is fine."""
    raw = os.fsencode(path)
    if _libc.umount2(raw, 0) == 0:
        return
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOENT):
        return  # not a mount point (any more)
    if err == errno.EBUSY:
        log.warning("mount busy, unmounting lazily", mount_point=path)
        if _libc.umount2(raw, _MNT_DETACH) == 0:
            return
        err = ctypes.get_errno()
        if err in (errno.EINVAL, errno.ENOENT):
            return
    raise DevicePlaneError(f"cannot unmount {path}: {os.strerror(err)}")


def unmount_matching(
    select: Callable[[list[MountInfo]], list[MountInfo]],
    mountinfo: Path = DEFAULT_MOUNTINFO,
) -> int:
    """Unmount every mount ``select(mounts)`` returns, innermost first, until none is left.

    ``select`` picks from the current mount list. Returns how many unmounts it made.
    Re-reading mountinfo between passes catches mounts stacked on the same point and mounts
    that only become visible once the one over them is gone.
    """
    done = 0
    for _ in range(_MAX_PASSES):
        found = select(read_mountinfo(mountinfo))
        if not found:
            return done
        # mountinfo lists parents before children: reversed, children go first.
        for mount in reversed(found):
            unmount_point(mount.mount_point)
            done += 1
    left = [m.mount_point for m in select(read_mountinfo(mountinfo))]
    if left:
        raise DevicePlaneError(f"mounts still present after unmounting: {', '.join(left)}")
    return done
