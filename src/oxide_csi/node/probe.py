"""Tell what is on a device: a filesystem, some other signature, or nothing at all.

The dangerous answer is "nothing": it leads to mkfs. ``blkid -p`` answers "nothing found"
(exit 2) not only for a blank disk but also for a path that does not exist, a zero-sized
device, a detached loop device and a device whose every read fails -- so its exit 2 is believed
only after this module has itself opened the device, read its size and read from it. Anything
that goes wrong along the way is :class:`Unavailable`, never "empty".
"""

from __future__ import annotations

import enum
import os
from dataclasses import dataclass
from pathlib import Path

from oxide_csi.errors import Unavailable
from oxide_csi.node.blockdev import device_size, stat_block_device
from oxide_csi.node.tools import DEFAULT_TOOL_TIMEOUT, run_tool, tool_message

#: How much of each end of the device :func:`reads_as_empty` insists is zero. Filesystem and
#: partition-table signatures live in the first MiB; GPT's backup, md and some LVM metadata
#: live at the end.
EDGE_BYTES = 1 << 20
_CHUNK = 1 << 16

# blkid(8): 0 = found, 2 = nothing found (or could not open!), 8 = ambivalent low-level probe.
_BLKID_FOUND = 0
_BLKID_NOTHING = 2
_BLKID_AMBIVALENT = 8


class Content(enum.Enum):
    FILESYSTEM = "filesystem"
    #: blkid recognised nothing. Not yet proof of zeros: see :func:`reads_as_empty`.
    EMPTY = "empty"
    #: A signature that is not a mountable filesystem (partition table, RAID or LVM member,
    #: swap, several conflicting signatures): never formatted over, never mounted.
    OTHER = "other"


@dataclass(frozen=True)
class ProbeResult:
    content: Content
    fs_type: str | None = None
    #: What blkid said, for messages (``PTTYPE=gpt``, ``TYPE=swap`` ...).
    detail: str = ""


def _read_exact(fd: int, offset: int, length: int, path: Path) -> bytes:
    try:
        data = os.pread(fd, length, offset)
    except OSError as exc:
        raise Unavailable(f"cannot read {path} at offset {offset}: {exc.strerror}") from None
    if len(data) != length:
        raise Unavailable(f"short read from {path} at offset {offset} ({len(data)}/{length})")
    return data


def check_readable(path: Path) -> int:
    """Prove the device can be opened, has a size and answers a read; return its size."""
    stat_block_device(path)
    size = device_size(path)
    if size == 0:
        raise Unavailable(f"{path} has size 0; cannot tell what is on it")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise Unavailable(f"cannot open {path}: {exc.strerror}") from None
    try:
        _read_exact(fd, 0, min(size, 4096), path)
        if size > 4096:
            _read_exact(fd, size - 4096, 4096, path)
    finally:
        os.close(fd)
    return size


def probe(path: Path, *, timeout: float = DEFAULT_TOOL_TIMEOUT) -> ProbeResult:
    """What ``blkid -p`` (a low-level probe that bypasses the cache) finds on ``path``."""
    check_readable(path)
    result = run_tool(
        ["blkid", "-p", "-o", "export", "--", str(path)], timeout=timeout, check=False
    )
    if result.returncode == _BLKID_NOTHING:
        # Re-check after the probe: a device that vanished meanwhile also makes blkid say 2.
        check_readable(path)
        return ProbeResult(Content.EMPTY)
    if result.returncode == _BLKID_AMBIVALENT:
        return ProbeResult(Content.OTHER, detail=f"ambivalent signatures: {tool_message(result)}")
    if result.returncode != _BLKID_FOUND:
        raise Unavailable(f"blkid -p {path} failed: {tool_message(result)}")
    fields = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    usage = fields.get("USAGE", "")
    fs_type = fields.get("TYPE")
    detail = " ".join(f"{k}={fields[k]}" for k in ("TYPE", "PTTYPE", "USAGE") if k in fields)
    if fs_type and usage == "filesystem":
        return ProbeResult(Content.FILESYSTEM, fs_type=fs_type, detail=detail)
    return ProbeResult(Content.OTHER, fs_type=fs_type, detail=detail or "unknown signature")


def reads_as_empty(path: Path, edge: int = EDGE_BYTES) -> bool:
    """True only if the first and last ``edge`` bytes of the device read back as zeros.

    The independent check behind formatting: it does not depend on blkid knowing every
    signature. Read errors raise :class:`Unavailable` (an unreadable device is not empty).
    """
    size = check_readable(path)
    spans = [(0, min(edge, size))]
    if size > edge:
        tail = max(edge, size - edge)
        spans.append((tail, size - tail))
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise Unavailable(f"cannot open {path}: {exc.strerror}") from None
    try:
        for start, length in spans:
            offset = start
            while offset < start + length:
                step = min(_CHUNK, start + length - offset)
                if _read_exact(fd, offset, step, path).count(0) != step:
                    return False
                offset += step
    finally:
        os.close(fd)
    return True
