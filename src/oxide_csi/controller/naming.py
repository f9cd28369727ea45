"""Deterministic Oxide names for CSI volumes and snapshots.

Why a hash first: the guest sees an attached disk as an NVMe device whose serial is the first
20 bytes of the disk's name, and the node finds the device by that serial. So those 20 bytes must
differ between any two of our disks. ``csi-`` plus 16 hex digits of SHA-256 over the CSI name
gives 64 bits of uniqueness in exactly 20 bytes, and the same CSI name always maps to the same
disk name, so a retried CreateVolume finds the disk the first attempt made. The readable tail
(the CSI name, lower-cased and cleaned) is for operators browsing the Oxide console.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

from oxide_csi.volume_contract import DISK_PREFIX, NAME_HASH_CHARS, is_managed_serial, serial_for

SNAPSHOT_PREFIX = "snap-"
CLONE_SNAPSHOT_PREFIX = "clone-"
MAX_NAME_LEN = 63
_CLONE_RE = re.compile(rf"^{CLONE_SNAPSHOT_PREFIX}[0-9a-f]{{{NAME_HASH_CHARS}}}(-|$)")


def _digest(csi_name: str) -> str:
    return hashlib.sha256(csi_name.encode()).hexdigest()[:NAME_HASH_CHARS]


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", text.lower())
    return re.sub(r"-{2,}", "-", slug).strip("-")


def _compose(prefix: str, csi_name: str) -> str:
    head = prefix + _digest(csi_name)
    tail = _slug(csi_name)
    name = f"{head}-{tail}" if tail else head
    return name[:MAX_NAME_LEN].rstrip("-")


def disk_name(csi_name: str) -> str:
    """The Oxide disk name for a CSI volume name."""
    return _compose(DISK_PREFIX, csi_name)


def snapshot_name(csi_name: str) -> str:
    """The Oxide snapshot name for a CSI snapshot name."""
    return _compose(SNAPSHOT_PREFIX, csi_name)


def clone_snapshot_name(target_csi_name: str) -> str:
    """The temporary snapshot a clone into ``target_csi_name`` goes through."""
    return _compose(CLONE_SNAPSHOT_PREFIX, target_csi_name)


def is_clone_snapshot(name: str) -> bool:
    """Whether a snapshot name is one of :func:`clone_snapshot_name`'s (not a user's)."""
    return bool(_CLONE_RE.match(name))


def serial_clash(name: str, others: Iterable[str]) -> str | None:
    """The first of ``others`` (disk names) the guest would see with the same serial as ``name``.

    Our own disks never clash (the hash head), but a static volume's disk may have any name:
    two disks whose names share their first 20 bytes would appear in one guest as two devices
    with one serial, and the node could not tell which is which.
    """
    serial = serial_for(name)
    return next((other for other in others if other != name and serial_for(other) == serial), None)


def is_managed_disk(name: str) -> bool:
    return is_managed_serial(serial_for(name))
