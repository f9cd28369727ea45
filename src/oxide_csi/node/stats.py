"""Usage and health of a published volume, for NodeGetVolumeStats.

The condition is what makes stats useful to an operator: a volume path that exists but no
longer has the volume mounted on it (the pod then writes into the host's disk), a filesystem
the kernel forced read-only after errors, or a device that has disappeared under its mount are
reported as *abnormal* with a message, instead of as plausible-looking numbers.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from oxide_csi.errors import CSIError, NotFound
from oxide_csi.node.blockdev import device_size
from oxide_csi.node.devices import DEFAULT_SYSFS_ROOT
from oxide_csi.node.mounts import Mounter


@dataclass(frozen=True)
class VolumeStats:
    """Usage figures (None where they do not apply or could not be read) and a condition."""

    total_bytes: int | None = None
    available_bytes: int | None = None
    used_bytes: int | None = None
    total_inodes: int | None = None
    free_inodes: int | None = None
    used_inodes: int | None = None
    abnormal: bool = False
    message: str = "ok"


def _abnormal(message: str) -> VolumeStats:
    return VolumeStats(abnormal=True, message=message)


def filesystem_stats(
    path: Path, mounter: Mounter, *, sysfs_root: Path = DEFAULT_SYSFS_ROOT
) -> VolumeStats:
    """statvfs figures for the filesystem mounted at ``path``.

    :class:`NotFound` when ``path`` does not exist (the spec's "no volume at this path");
    every other problem is an abnormal condition.
    """
    if not os.path.lexists(path):
        raise NotFound(f"volume path {path} does not exist")
    try:
        mount = mounter.top_mount(path)
    except CSIError as exc:
        return _abnormal(f"cannot read the mount table: {exc}")
    if mount is None:
        return _abnormal(f"{path} is not a mount point: the volume is not mounted there")
    device_dir = sysfs_root / "dev" / "block" / f"{mount.major}:{mount.minor}"
    if mount.major != 0 and not device_dir.exists():
        return _abnormal(f"the device under {path} ({mount.source}) has gone away")
    try:
        vfs = os.statvfs(path)
    except OSError as exc:
        return _abnormal(f"statvfs on {path} failed: {exc.strerror}")
    total = vfs.f_blocks * vfs.f_frsize
    free = vfs.f_bfree * vfs.f_frsize
    message = "ok"
    abnormal = False
    if "ro" not in mount.options and "ro" in mount.super_options:
        abnormal = True
        message = f"the filesystem under {path} has gone read-only (errors on the device?)"
    return VolumeStats(
        total_bytes=total,
        available_bytes=vfs.f_bavail * vfs.f_frsize,
        used_bytes=total - free,
        total_inodes=vfs.f_files,
        free_inodes=vfs.f_ffree,
        used_inodes=vfs.f_files - vfs.f_ffree,
        abnormal=abnormal,
        message=message,
    )


def block_stats(path: Path, mounter: Mounter | None = None) -> VolumeStats:
    """Size of the block device at ``path`` (a device node or a block publish target).

    With ``mounter``, a publish target that is a plain file no longer backed by a mounted
    device node is reported as abnormal rather than as a 0-byte "device".
    """
    if not os.path.lexists(path):
        raise NotFound(f"volume path {path} does not exist")
    if mounter is not None:
        try:
            mounted = mounter.is_mounted(path)
        except CSIError as exc:
            return _abnormal(f"cannot read the mount table: {exc}")
        if not mounted and not stat.S_ISBLK(os.lstat(path).st_mode):
            return _abnormal(f"{path} is not a mount point: the device is not published there")
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        return _abnormal(f"cannot stat {path}: {exc.strerror}")
    if not stat.S_ISBLK(mode):
        return _abnormal(f"{path} is not a block device")
    try:
        size = device_size(path)
    except CSIError as exc:
        return _abnormal(str(exc))
    return VolumeStats(total_bytes=size)
