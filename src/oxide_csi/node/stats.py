"""Usage and health of a published volume, for NodeGetVolumeStats.

The condition is what makes stats useful to an operator: a filesystem the kernel forced
read-only after errors, a filesystem with recorded errors, or a device that has disappeared
under its mount are reported as *abnormal* with a message, instead of as plausible-looking
numbers. A path with nothing mounted on it holds no volume at all, and the CSI specification
answers that with NOT_FOUND ("volume does not exist on the specified volume_path"), not with a
condition.
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

    :class:`NotFound` when ``path`` does not exist or has nothing mounted on it (the spec's
    "no volume at this path"); every other problem is an abnormal condition.
    """
    if not os.path.lexists(path):
        raise NotFound(f"volume path {path} does not exist")
    try:
        mount = mounter.top_mount(path)
    except CSIError as exc:
        return _abnormal(f"cannot read the mount table: {exc}")
    if mount is None:
        raise NotFound(f"no volume is mounted at {path}")
    device_dir = sysfs_root / "dev" / "block" / f"{mount.major}:{mount.minor}"
    if mount.major != 0 and not device_dir.exists():
        return _abnormal(f"the device under {path} ({mount.source}) has gone away")
    errors = _ext4_error_count(device_dir) if mount.fs_type == "ext4" else 0
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
    elif errors:
        abnormal = True
        message = f"the kernel has recorded {errors} error(s) on the filesystem under {path}"
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


def _ext4_error_count(device_dir: Path) -> int:
    """ext4's own error counter (``/sys/fs/ext4/<dev>/errors_count``); 0 when unknown."""
    try:
        name = Path(os.path.realpath(device_dir, strict=True)).name
        text = (device_dir.parents[2] / "fs" / "ext4" / name / "errors_count").read_text()
        return int(text.strip())
    except (OSError, ValueError, IndexError):
        return 0


def volume_stats(
    path: Path, mounter: Mounter, *, sysfs_root: Path = DEFAULT_SYSFS_ROOT
) -> VolumeStats:
    """Stats for whatever was published or staged at ``path``: a directory holds a mounted
    filesystem, anything else is taken as a block volume."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise NotFound(f"volume path {path} does not exist") from None
    except OSError as exc:
        return _abnormal(f"cannot examine {path}: {exc.strerror}")
    if stat.S_ISDIR(st.st_mode):
        return filesystem_stats(path, mounter, sysfs_root=sysfs_root)
    return block_stats(path, mounter)


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
            raise NotFound(f"no block volume is published at {path}")
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
