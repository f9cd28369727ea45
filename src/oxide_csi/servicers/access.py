"""Which volume capabilities an Oxide disk can honour, checked the same way by every service.

An Oxide disk attaches to one instance at a time, read-write. So the single-node access modes
are honoured -- SINGLE_NODE_MULTI_WRITER too, since several pods on one node share the node's
mount -- and every multi-node mode is refused. SINGLE_NODE_READER_ONLY is refused as well:
Oxide cannot attach a disk read-only, and promising a read-only volume that is writable at the
block level is a promise we cannot keep. Mount volumes may name ext4 or xfs; block volumes are
handed to the pod raw.
"""

from __future__ import annotations

from collections.abc import Sequence

from oxide_csi.csi_v1 import csi_pb2
from oxide_csi.errors import InvalidArgument
from oxide_csi.volume_contract import FS_TYPES

Mode = csi_pb2.VolumeCapability.AccessMode
SUPPORTED_MODES = frozenset(
    {
        Mode.SINGLE_NODE_WRITER,
        Mode.SINGLE_NODE_SINGLE_WRITER,
        Mode.SINGLE_NODE_MULTI_WRITER,
    }
)


def _mode_name(mode: int) -> str:
    """The mode's name; proto3 enums are open, so a client may send a number we do not know."""
    for name, number in Mode.Mode.items():
        if number == mode:
            return name
    return f"#{mode} (unknown)"


def capability_problem(cap: csi_pb2.VolumeCapability) -> str | None:
    """Why ``cap`` cannot be honoured, or None when it can."""
    if not cap.HasField("access_mode"):
        return "volume capability has no access_mode"
    mode = cap.access_mode.mode
    if mode not in SUPPORTED_MODES:
        return f"access mode {_mode_name(mode)} is not supported by Oxide disks"
    kind = cap.WhichOneof("access_type")
    if kind is None:
        return "volume capability names neither block nor mount access"
    if kind == "mount":
        fs = cap.mount.fs_type.strip().lower()
        if fs and fs not in FS_TYPES:
            return f"filesystem {cap.mount.fs_type!r} is not supported (use ext4 or xfs)"
    return None


def check_capabilities(caps: Sequence[csi_pb2.VolumeCapability]) -> None:
    """Raise INVALID_ARGUMENT unless every capability is present and supported."""
    if not caps:
        raise InvalidArgument("volume_capabilities must not be empty")
    for cap in caps:
        problem = capability_problem(cap)
        if problem is not None:
            raise InvalidArgument(problem)


def check_capability(cap: csi_pb2.VolumeCapability, present: bool) -> None:
    if not present:
        raise InvalidArgument("volume_capability is required")
    check_capabilities([cap])


def mount_fs_type(caps: Sequence[csi_pb2.VolumeCapability]) -> str:
    """The single filesystem the mount capabilities ask for ("" for none); two differ: error."""
    wanted = {
        c.mount.fs_type.strip().lower() for c in caps if c.WhichOneof("access_type") == "mount"
    }
    wanted.discard("")
    if len(wanted) > 1:
        raise InvalidArgument(f"capabilities ask for different filesystems: {sorted(wanted)}")
    return wanted.pop() if wanted else ""
