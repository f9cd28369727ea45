"""Check and grow a filesystem that is already on a disk.

Why check before mounting: ``e2fsck -p`` (preen) looks only at the clean flag when the
filesystem was unmounted cleanly, so it costs milliseconds, and it replays the journal and
fixes the small inconsistencies a crash leaves, which the kernel would otherwise trip over at
run time. It refuses to guess about anything more serious, and so do we: a filesystem that
needs a human is reported, never "repaired" further or reformatted. XFS has no cheap check
(``xfs_repair -n`` reads all metadata); mounting replays its log and refuses a corrupt one.

Why grow: a disk restored from a snapshot or cloned from a smaller disk is larger than the
filesystem on it, and the user asked for the larger size. ext4 is grown *before* it is
mounted: offline growth needs no special capability (online growth wants CAP_SYS_RESOURCE),
and a failure leaves nothing mounted, so the retried stage does it again. ``resize2fs`` insists
on a forced check first, which is why the forced check runs only when growth is due. XFS can
only grow mounted; ``xfs_growfs`` is a no-op when there is nothing to do, so it runs on every
stage -- which also finishes a growth that an earlier, interrupted stage did not.
"""

from __future__ import annotations

from pathlib import Path

import structlog

from oxide_csi.errors import FailedPrecondition, Internal, Unavailable
from oxide_csi.node.tools import DEFAULT_TOOL_TIMEOUT, run_tool, tool_message

log = structlog.get_logger(__name__)

#: Filesystems an existing disk may carry and still be mounted (ext2/3 through the ext4
#: driver). Formatting only ever makes ext4 or xfs.
MOUNTABLE_FS_TYPES = ("ext2", "ext3", "ext4", "xfs")
_EXT_TYPES = ("ext2", "ext3", "ext4")

#: Oxide disk sizes differ by whole GiB. A smaller surplus of device over filesystem is what
#: ``resize2fs`` leaves on purpose (a last block group too small to hold its own metadata), and
#: must not trigger a forced check on every stage.
GROW_SLACK_BYTES = 16 << 20

#: Seconds a check or a growth may take. Generous on purpose: a full ``e2fsck`` and a resize
#: scale with the filesystem, a check cut short would be retried (and cut short) forever, and
#: killing an offline resize halfway is how a filesystem gets damaged.
DEFAULT_CHECK_TIMEOUT = 3600.0

# e2fsck(8) exit status bits.
_FSCK_UNCORRECTED = 4
_FSCK_OPERATIONAL = 8 | 16 | 32 | 128


def is_ext(fs_type: str) -> bool:
    return fs_type in _EXT_TYPES


def check_mountable(fs_type: str | None, device: Path) -> str:
    """The filesystem type found on ``device`` if we know how to mount it, else refuse."""
    if fs_type not in MOUNTABLE_FS_TYPES:
        raise FailedPrecondition(
            f"{device} holds a {fs_type or 'unknown'} filesystem, which this plugin does not mount"
        )
    return fs_type


def check_ext(device: Path, *, force: bool = False, timeout: float = DEFAULT_CHECK_TIMEOUT) -> None:
    """``e2fsck -p`` on an unmounted ext2/3/4 device (``-f``: even if marked clean).

    Errors corrected (exit 1, 2) are fine. Errors it will not fix without a human are
    :class:`FailedPrecondition`; the tool failing to run at all (device busy, mounted
    elsewhere, cancelled) is :class:`Unavailable`.
    """
    argv = ["e2fsck", "-p", *(["-f"] if force else []), "--", str(device)]
    result = run_tool(argv, timeout=timeout, check=False)
    code = result.returncode
    if code & _FSCK_OPERATIONAL:
        raise Unavailable(f"e2fsck could not check {device}: {tool_message(result)}")
    if code & _FSCK_UNCORRECTED:
        raise FailedPrecondition(
            f"the filesystem on {device} has errors e2fsck -p will not fix; it needs a manual "
            f"e2fsck: {tool_message(result)}"
        )
    if code:
        log.warning("e2fsck corrected errors", device=str(device), returncode=code)


def ext_size(device: Path, *, timeout: float = DEFAULT_TOOL_TIMEOUT) -> int:
    """Bytes the ext2/3/4 filesystem on ``device`` spans, from its superblock."""
    result = run_tool(["dumpe2fs", "-h", "--", str(device)], timeout=timeout, error=Unavailable)
    fields: dict[str, str] = {}
    for line in result.stdout.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    try:
        return int(fields["Block count"]) * int(fields["Block size"])
    except (KeyError, ValueError):
        raise Unavailable(f"dumpe2fs -h {device} did not report the filesystem size") from None


def grow_ext_offline(
    device: Path, device_bytes: int, *, timeout: float = DEFAULT_CHECK_TIMEOUT
) -> bool:
    """Grow an unmounted ext filesystem to its device when the device is clearly larger.

    Returns whether it grew. The forced check ``resize2fs`` demands comes first, so a
    filesystem with errors is refused before it is resized.
    """
    fs_bytes = ext_size(device, timeout=timeout)
    if device_bytes - fs_bytes < GROW_SLACK_BYTES:
        return False
    check_ext(device, force=True, timeout=timeout)
    log.info("growing filesystem", device=str(device), fs_bytes=fs_bytes, device_bytes=device_bytes)
    run_tool(["resize2fs", "--", str(device)], timeout=timeout, error=Internal)
    return True


def grow_xfs(mount_point: Path, *, timeout: float = DEFAULT_CHECK_TIMEOUT) -> None:
    """Grow the mounted XFS at ``mount_point`` to fill its device (no-op when it does)."""
    run_tool(["xfs_growfs", "-d", "--", str(mount_point)], timeout=timeout, error=Internal)
