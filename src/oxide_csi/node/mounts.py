"""Mount, bind-mount and unmount through util-linux, checked against mountinfo.

Why the ``mount``/``umount`` tools and not the syscalls: they handle the option strings users
put in StorageClass ``mountOptions`` (filesystem-specific options, SELinux contexts with quoted
commas) exactly as every other Linux tool does, and a read-only bind needs the two-step
bind-then-remount that ``mount`` already knows.

Paths given here are expected to come through :class:`oxide_csi.node.paths.PathGuard`, i.e.
already resolved, so both tools run with ``-c`` (no canonicalisation): canonicalising stats
the path, which is what can hang or fail when the device under a mount has gone away.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import structlog

from oxide_csi.errors import FailedPrecondition, Internal, InvalidArgument, Unavailable
from oxide_csi.node.mountinfo import DEFAULT_MOUNTINFO, MountInfo, read_mountinfo
from oxide_csi.node.tools import DEFAULT_TOOL_TIMEOUT, run_tool, tool_message

log = structlog.get_logger(__name__)

#: Options that would turn a mount into a different operation; never accepted from a request.
_FORBIDDEN_OPTIONS = frozenset(
    {
        "bind",
        "rbind",
        "move",
        "remount",
        "make-shared",
        "make-slave",
        "make-private",
        "make-unbindable",
        "make-rshared",
        "make-rslave",
        "make-rprivate",
        "make-runbindable",
    }
)
#: How many mounts stacked on one path an unmount will peel off before giving up.
_MAX_STACKED = 16


def check_mount_flags(flags: Sequence[str]) -> tuple[str, ...]:
    """Validate ``mount_flags`` from a volume capability; return them as a tuple.

    Each flag is passed to ``mount -o``; anything that could change *what* mount does (bind,
    move, remount, propagation) or smuggle in another argument is refused.
    """
    checked = []
    for flag in flags:
        flag = flag.strip()
        if not flag:
            continue
        if any(ch in flag for ch in "\x00\n\r\t"):
            raise InvalidArgument(f"mount flag {flag!r} holds control characters")
        if flag.startswith("-"):
            raise InvalidArgument(f"mount flag {flag!r} looks like a command-line option")
        names = {part.split("=", 1)[0].strip() for part in flag.split(",")}
        bad = names & _FORBIDDEN_OPTIONS
        if bad:
            raise InvalidArgument(f"mount flag {flag!r} is not allowed ({', '.join(sorted(bad))})")
        checked.append(flag)
    return tuple(checked)


#: Flags of a mount (not of its filesystem) that a bind-and-remount would otherwise drop.
_PER_MOUNT_FLAGS = frozenset(
    {"nosuid", "nodev", "noexec", "noatime", "nodiratime", "relatime", "strictatime", "nosymfollow"}
)


def per_mount_flags(options: Sequence[str]) -> list[str]:
    """The per-mount flags among a mount's mountinfo ``options`` (``ro``/``rw`` left out)."""
    return [opt for opt in options if opt in _PER_MOUNT_FLAGS]


def option_names(flags: Sequence[str]) -> set[str]:
    """The individual options in ``flags`` (a flag may hold several: ``"ro,noatime"``)."""
    return {part.split("=", 1)[0].strip() for flag in flags for part in flag.split(",")}


class Mounter:
    """Mount operations plus the mountinfo queries that make them idempotent."""

    def __init__(
        self,
        *,
        mountinfo_path: Path = DEFAULT_MOUNTINFO,
        timeout: float = DEFAULT_TOOL_TIMEOUT,
    ) -> None:
        self.mountinfo_path = mountinfo_path
        self.timeout = timeout

    # -- queries ----------------------------------------------------------------------------

    def mounts(self) -> list[MountInfo]:
        return read_mountinfo(self.mountinfo_path)

    def mounts_at(self, path: Path) -> list[MountInfo]:
        """Every mount whose mount point is ``path``, bottom first (stacked mounts last)."""
        target = str(path)
        return [m for m in self.mounts() if m.mount_point == target]

    def top_mount(self, path: Path) -> MountInfo | None:
        """The mount a process sees at ``path`` (the most recent one), or None."""
        found = self.mounts_at(path)
        return found[-1] if found else None

    def is_mounted(self, path: Path) -> bool:
        return bool(self.mounts_at(path))

    def mounts_of(self, major: int, minor: int) -> list[MountInfo]:
        """Every mount of block device ``major:minor``, wherever it is."""
        return [m for m in self.mounts() if (m.major, m.minor) == (major, minor)]

    # -- operations -------------------------------------------------------------------------

    def mount(
        self, source: Path, target: Path, fs_type: str, options: Sequence[str] = ()
    ) -> MountInfo:
        """Mount filesystem ``fs_type`` from ``source`` at ``target``; return the new mount."""
        argv = ["mount", "-c", "-t", fs_type]
        if options:
            argv += ["-o", ",".join(options)]
        argv += ["--", str(source), str(target)]
        run_tool(argv, timeout=self.timeout, error=Internal)
        return self._require_mounted(target)

    def bind(
        self, source: Path, target: Path, *, readonly: bool, options: Sequence[str] = ()
    ) -> MountInfo:
        """Bind ``source`` (a directory or a device node) onto ``target``.

        Read-only is checked afterwards in mountinfo: if the remount step did not take, the
        read-write bind is removed again rather than left for a pod that asked for read-only.
        """
        opts = ["bind", *options]
        if readonly:
            opts.append("ro")
        argv = ["mount", "-c", "-o", ",".join(opts), "--", str(source), str(target)]
        run_tool(argv, timeout=self.timeout, error=Internal)
        made = self._require_mounted(target)
        if readonly and "ro" not in made.options:
            self.unmount(target)
            raise Internal(f"bind mount at {target} did not become read-only; removed it")
        return made

    def unmount(self, target: Path) -> None:
        """Unmount everything mounted at ``target``; not mounted is success.

        Works from mountinfo, not from the filesystem, so a mount whose device has gone (I/O
        errors on every access) is still found and removed.
        """
        for _ in range(_MAX_STACKED):
            if not self.is_mounted(target):
                return
            result = run_tool(
                ["umount", "-c", "--", str(target)], timeout=self.timeout, check=False
            )
            if result.returncode == 0:
                log.info("unmounted", path=str(target))
                continue
            message = tool_message(result)
            if not self.is_mounted(target):
                return  # someone else unmounted it meanwhile
            if "busy" in message:
                raise Unavailable(f"{target} is busy and cannot be unmounted yet: {message}")
            raise Internal(f"umount {target} failed: {message}")
        raise Internal(f"more than {_MAX_STACKED} mounts are stacked on {target}")

    def _require_mounted(self, target: Path) -> MountInfo:
        top = self.top_mount(target)
        if top is None:
            raise Internal(f"mount reported success but nothing is mounted at {target}")
        return top


def ensure_dir(path: Path) -> None:
    """Create the directory a mount goes on (and its parents); an existing one is fine."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise FailedPrecondition(f"{path} exists and is not a directory") from None
    except OSError as exc:
        raise FailedPrecondition(f"cannot create directory {path}: {exc.strerror}") from None


def ensure_file(path: Path) -> None:
    """Create the empty file a device node is bind-mounted onto; never through a symlink."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    except IsADirectoryError:
        raise FailedPrecondition(f"{path} exists and is a directory, not a file") from None
    except OSError as exc:
        raise FailedPrecondition(f"cannot create {path}: {exc.strerror}") from None
    os.close(fd)
