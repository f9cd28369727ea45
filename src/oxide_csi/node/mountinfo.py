"""Parse ``/proc/self/mountinfo``: the kernel's own list of what is mounted where.

Mountinfo rather than ``/proc/mounts`` because it carries the ``major:minor`` of the mounted
device (a device can be renamed or its node removed, the number stays true), the root of a bind
mount within its filesystem, and per-mount options separately from superblock options (a bind
mount can be read-only over a read-write filesystem).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from oxide_csi.errors import Unavailable

DEFAULT_MOUNTINFO = Path("/proc/self/mountinfo")

_DELETED = " (deleted)"
_OCTAL = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True)
class MountInfo:
    """One line of mountinfo (see proc(5))."""

    mount_id: int
    parent_id: int
    major: int
    minor: int
    root: str
    mount_point: str
    options: tuple[str, ...]
    fs_type: str
    source: str
    super_options: tuple[str, ...]
    #: The mount point's directory was unlinked (the kernel appends `` (deleted)``).
    deleted: bool = False

    @property
    def read_only(self) -> bool:
        """Read-only for writers through this mount (per-mount or superblock flag)."""
        return "ro" in self.options or "ro" in self.super_options


def unescape(field: str) -> str:
    """Undo the kernel's octal escaping of space, tab, newline and backslash."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def parse_line(line: str) -> MountInfo:
    """Parse one mountinfo line; raises :class:`ValueError` on a malformed one."""
    fields = line.split()
    try:
        sep = fields.index("-", 6)
    except ValueError:
        raise ValueError(f"no separator in mountinfo line: {line!r}") from None
    if len(fields) < sep + 3:
        raise ValueError(f"short mountinfo line: {line!r}")
    major_s, minor_s = fields[2].split(":")
    mount_point = unescape(fields[4])
    deleted = mount_point.endswith(_DELETED)
    if deleted:
        mount_point = mount_point[: -len(_DELETED)]
    return MountInfo(
        mount_id=int(fields[0]),
        parent_id=int(fields[1]),
        major=int(major_s),
        minor=int(minor_s),
        root=unescape(fields[3]),
        mount_point=mount_point,
        options=tuple(fields[5].split(",")),
        fs_type=unescape(fields[sep + 1]),
        source=unescape(fields[sep + 2]),
        super_options=tuple(fields[sep + 3].split(",")) if len(fields) > sep + 3 else (),
        deleted=deleted,
    )


def parse(text: str) -> list[MountInfo]:
    return [parse_line(line) for line in text.splitlines() if line.strip()]


def read_mountinfo(path: Path = DEFAULT_MOUNTINFO) -> list[MountInfo]:
    """All mounts of this process's namespace, in the kernel's order (parents first)."""
    try:
        text = path.read_text(errors="surrogateescape")
    except OSError as exc:
        raise Unavailable(f"cannot read {path}: {exc.strerror}") from None
    try:
        return parse(text)
    except ValueError as exc:
        raise Unavailable(f"cannot parse {path}: {exc}") from None
