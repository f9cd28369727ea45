"""Make a filesystem on a disk -- only a disk that is provably new and provably blank.

Formatting is the one irreversible thing the node does, so it needs every one of:

* the caller says the disk is known-new (the controller created it blank, not from a snapshot
  or image, which would already carry a filesystem);
* ``blkid -p`` finds no signature at all, on a device proven readable (see :mod:`.probe`);
* the first and last MiB read back as zeros;
* the device still carries the expected serial, re-read immediately before ``mkfs``.

A process-wide lock serialises formatting: two stages racing on the same disk (a kubelet retry
overlapping the first attempt) must not both see "blank" and both run mkfs.

Choice of mkfs options, measured on this project's dev machine with a 1 TiB sparse loop
device: ``mkfs.ext4`` with lazy inode-table and journal init took 0.10 s without discard and
0.15 s with it, against 0.49 s (and 18 GiB written) without lazy init; ``mkfs.xfs`` took 0.36 s
with discard and ~0 s with ``-K``. A loop device discards by punching holes, which is cheap; a
network-backed NVMe disk may take time proportional to its size, and a known-new disk already
reads as zeros, so discard buys nothing -- both are run without it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import structlog

from oxide_csi.errors import FailedPrecondition, Internal, InvalidArgument
from oxide_csi.node.devices import BlockDevice
from oxide_csi.node.probe import Content, probe, reads_as_empty
from oxide_csi.node.tools import run_tool
from oxide_csi.volume_contract import FS_TYPES

log = structlog.get_logger(__name__)

#: Serialises every mkfs in this process (see the module docstring).
FORMAT_LOCK = threading.Lock()

#: mkfs.xfs features pinned to what Linux 5.4 mounts (xfsprogs' own lts_5.4 profile): the
#: node image's xfsprogs may be far newer than the host kernel, and a filesystem with
#: bigtime/inobtcount (5.10+) or nrext64 (5.19+) would not mount on an older node kernel.
XFS_FEATURES = (
    "-m", "crc=1,finobt=1,rmapbt=0,reflink=1,bigtime=0,inobtcount=0",
    "-i", "sparse=1,nrext64=0",
)  # fmt: skip
#: mkfs.ext4 without discard and with lazy init (the kernel zeroes inode tables after mount),
#: and with no blocks reserved for root (``-m 0``): the default 5 % keeps a root-run system
#: alive on a full root filesystem, but a volume belongs to a pod, whose processes seldom run
#: as root, so the reserve would only hide 5 % of the disk the claim paid for.
EXT4_OPTIONS = ("-m", "0", "-E", "lazy_itable_init=1,lazy_journal_init=1,nodiscard")

#: Default seconds mkfs may run; lazy init keeps it short even for very large disks.
DEFAULT_MKFS_TIMEOUT = 120.0


def check_fs_type(fs_type: str) -> str:
    if fs_type not in FS_TYPES:
        raise InvalidArgument(
            f"filesystem type {fs_type!r} is not supported (use {' or '.join(FS_TYPES)})"
        )
    return fs_type


def mkfs_argv(fs_type: str, device: Path) -> list[str]:
    """The mkfs command line. No force flags: mkfs.xfs then refuses a device with a
    signature on its own, one more net under the checks made before."""
    if fs_type == "ext4":
        return ["mkfs.ext4", "-q", *EXT4_OPTIONS, "--", str(device)]
    if fs_type == "xfs":
        return ["mkfs.xfs", "-q", "-K", *XFS_FEATURES, "--", str(device)]
    raise InvalidArgument(f"filesystem type {fs_type!r} is not supported")


def format_device(
    device: Path,
    serial: str,
    fs_type: str,
    *,
    known_new: bool,
    verify: Callable[[Path, str], BlockDevice],
    timeout: float = DEFAULT_MKFS_TIMEOUT,
) -> None:
    """Create ``fs_type`` on ``device`` if -- and only if -- every check above passes.

    ``verify`` is :meth:`DeviceFinder.verify`; it raises if the identity does not match.
    Raises :class:`FailedPrecondition` when the disk is not provably new and blank (data would
    be at risk), :class:`Unavailable` when the device cannot be read or identified.
    """
    check_fs_type(fs_type)
    with FORMAT_LOCK:
        verify(device, serial)
        found = probe(device)
        if found.content is Content.FILESYSTEM:
            raise FailedPrecondition(
                f"{device} already holds a {found.fs_type} filesystem; not formatting"
            )
        if found.content is Content.OTHER:
            raise FailedPrecondition(f"{device} holds {found.detail}; not formatting")
        if not known_new:
            raise FailedPrecondition(
                f"{device} has no filesystem but the volume is not known to be new "
                "(created from a snapshot or image?); refusing to format"
            )
        if not reads_as_empty(device):
            raise FailedPrecondition(
                f"{device} has no filesystem signature but holds data; refusing to format"
            )
        verify(device, serial)
        log.info("formatting", device=str(device), serial=serial, fs_type=fs_type)
        run_tool(mkfs_argv(fs_type, device), timeout=timeout, error=Internal)
