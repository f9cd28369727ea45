"""Staging and publishing: what NodeStage/NodePublish and their inverses do on the host.

Every operation is idempotent in the CSI sense -- repeating a call that already succeeded
succeeds without doing anything -- and refuses (rather than "fixes") a path that is in use
for something else. The servicer is expected to have passed request paths through
:class:`oxide_csi.node.paths.PathGuard` and to serialise calls per volume; this module
serialises only formatting (see :mod:`.format`).

Layout, as kubelet drives it: a filesystem volume is mounted once at the staging path and
bind-mounted into each pod's target directory; a block volume is not staged at all (the device
is only verified) and each target is a file with the device node bind-mounted onto it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

import structlog

from oxide_csi.errors import AlreadyExists, FailedPrecondition, Internal
from oxide_csi.node.blockdev import major_minor, stat_block_device
from oxide_csi.node.devices import BlockDevice, DeviceFinder
from oxide_csi.node.format import DEFAULT_MKFS_TIMEOUT, check_fs_type, format_device
from oxide_csi.node.mountinfo import MountInfo
from oxide_csi.node.mounts import Mounter, check_mount_flags
from oxide_csi.node.probe import Content, probe
from oxide_csi.node.tools import DEFAULT_TOOL_TIMEOUT, run_tool

log = structlog.get_logger(__name__)


class Stager:
    """The node's volume operations, built on a :class:`DeviceFinder` and a :class:`Mounter`."""

    def __init__(
        self,
        finder: DeviceFinder,
        mounter: Mounter,
        *,
        mkfs_timeout: float = DEFAULT_MKFS_TIMEOUT,
        tool_timeout: float = DEFAULT_TOOL_TIMEOUT,
    ) -> None:
        self.finder = finder
        self.mounter = mounter
        self.mkfs_timeout = mkfs_timeout
        self.tool_timeout = tool_timeout

    # -- stage ------------------------------------------------------------------------------

    def stage_filesystem(
        self,
        device: Path,
        serial: str,
        staging_path: Path,
        fs_type: str,
        mount_flags: Sequence[str] = (),
        *,
        known_new: bool = False,
    ) -> None:
        """Mount the disk's filesystem at ``staging_path``, formatting a known-new blank disk.

        Already staged from the same device: success (and the filesystem is grown if the disk
        has grown since). Staged from another device or as another type:
        :class:`AlreadyExists`, as the spec asks for an incompatible existing stage.
        """
        check_fs_type(fs_type)
        flags = check_mount_flags(mount_flags)
        dev = self.finder.verify(device, serial)
        existing = self.mounter.top_mount(staging_path)
        if existing is not None:
            self._check_same_stage(existing, dev, staging_path, fs_type)
            self._grow_if_writable(existing, device, staging_path, fs_type)
            return
        _ensure_dir(staging_path)
        found = probe(device, timeout=self.tool_timeout)
        if found.content is Content.FILESYSTEM:
            if found.fs_type != fs_type:
                raise FailedPrecondition(
                    f"{device} holds a {found.fs_type} filesystem, {fs_type} was requested"
                )
        elif found.content is Content.EMPTY:
            format_device(
                device,
                serial,
                fs_type,
                known_new=known_new,
                verify=self.finder.verify,
                timeout=self.mkfs_timeout,
            )
        else:
            raise FailedPrecondition(f"{device} holds {found.detail}; it cannot be mounted")
        options = list(flags)
        if fs_type == "xfs" and "nouuid" not in options:
            # Clones of one disk (from a snapshot or image) share the XFS UUID, and XFS refuses
            # a second mount of a UUID it already has mounted unless told not to check.
            options.append("nouuid")
        self.finder.verify(device, serial)
        mounted = self.mounter.mount(device, staging_path, fs_type, options)
        if (mounted.major, mounted.minor) != (dev.major, dev.minor):
            self.mounter.unmount(staging_path)
            raise Internal(
                f"mounted {device} at {staging_path} but mountinfo shows device "
                f"{mounted.major}:{mounted.minor}; undone"
            )
        log.info("staged", device=str(device), serial=serial, path=str(staging_path))
        self._grow_if_writable(mounted, device, staging_path, fs_type)

    def stage_block(self, device: Path, serial: str) -> BlockDevice:
        """Block volumes are not mounted at stage; only prove the device is the right disk."""
        return self.finder.verify(device, serial)

    @staticmethod
    def _check_same_stage(
        existing: MountInfo, dev: BlockDevice, staging_path: Path, fs_type: str
    ) -> None:
        if (existing.major, existing.minor) != (dev.major, dev.minor) or existing.root != "/":
            raise AlreadyExists(
                f"{staging_path} is already mounted from another device "
                f"({existing.source}, {existing.major}:{existing.minor})"
            )
        if existing.fs_type != fs_type:
            raise AlreadyExists(
                f"{staging_path} is already mounted as {existing.fs_type}, not {fs_type}"
            )

    # -- grow -------------------------------------------------------------------------------

    def grow_filesystem(self, device: Path, mount_point: Path, fs_type: str) -> None:
        """Grow a mounted filesystem to fill its device; a no-op when it already does.

        Both tools check the sizes themselves and exit 0 with nothing to do, so calling them
        on every stage is the simplest way to finish an expansion interrupted halfway.
        """
        check_fs_type(fs_type)
        if fs_type == "ext4":
            argv = ["resize2fs", "--", str(device)]
        else:
            argv = ["xfs_growfs", "-d", "--", str(mount_point)]
        run_tool(argv, timeout=self.mkfs_timeout, error=Internal)

    def _grow_if_writable(
        self, mount: MountInfo, device: Path, mount_point: Path, fs_type: str
    ) -> None:
        if mount.read_only:
            return  # a read-only mount cannot be resized online; the next rw stage will
        self.grow_filesystem(device, mount_point, fs_type)

    # -- publish ----------------------------------------------------------------------------

    def publish_mount(
        self,
        staging_path: Path,
        target: Path,
        readonly: bool,
        mount_flags: Sequence[str] = (),
    ) -> None:
        """Bind the staged filesystem into the pod's ``target`` directory (created if absent)."""
        flags = check_mount_flags(mount_flags)
        staged = self.mounter.top_mount(staging_path)
        if staged is None:
            raise FailedPrecondition(f"volume is not staged: nothing is mounted at {staging_path}")
        existing = self.mounter.top_mount(target)
        if existing is not None:
            same = (existing.major, existing.minor, existing.root) == (
                staged.major,
                staged.minor,
                staged.root,
            )
            if same and ("ro" in existing.options) == readonly:
                return
            raise AlreadyExists(
                f"{target} is already mounted, from a different volume or with a different "
                "read-only setting"
            )
        _ensure_dir(target)
        self.mounter.bind(staging_path, target, readonly=readonly, options=flags)
        log.info("published", staging=str(staging_path), target=str(target), readonly=readonly)

    def publish_block(
        self, device: Path, target_file: Path, readonly: bool, *, serial: str | None = None
    ) -> None:
        """Bind the device node onto ``target_file`` (created empty if absent).

        Read-only works because opening a device node for writing through a read-only mount
        fails with ``EROFS``. With ``serial`` the device's identity is verified first.
        """
        if serial is not None:
            self.finder.verify(device, serial)
        dev_st = stat_block_device(device)
        if self.mounter.is_mounted(target_file):
            top = self.mounter.top_mount(target_file)
            try:
                tgt_st = os.stat(target_file)
            except OSError as exc:
                raise FailedPrecondition(
                    f"{target_file} is mounted but cannot be examined: {exc.strerror}"
                ) from None
            same = stat.S_ISBLK(tgt_st.st_mode) and tgt_st.st_rdev == dev_st.st_rdev
            if same and top is not None and ("ro" in top.options) == readonly:
                return
            raise AlreadyExists(
                f"{target_file} is already mounted, from a different device or with a different "
                "read-only setting"
            )
        _ensure_file(target_file)
        self.mounter.bind(device, target_file, readonly=readonly)
        major, minor = major_minor(dev_st)
        log.info("published block", device=f"{major}:{minor}", target=str(target_file))

    # -- undo -------------------------------------------------------------------------------

    def unpublish(self, target: Path) -> None:
        """Unmount ``target`` and remove the directory or file publish created there.

        Missing or already unmounted is success. A directory that is not empty once nothing
        is mounted on it holds somebody's data and is left alone (:class:`FailedPrecondition`).
        """
        self.mounter.unmount(target)
        try:
            st = os.lstat(target)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            try:
                os.rmdir(target)
            except FileNotFoundError:
                return
            except OSError as exc:
                raise FailedPrecondition(
                    f"cannot remove {target} after unmounting: {exc.strerror}"
                ) from None
        elif stat.S_ISREG(st.st_mode) and st.st_size == 0:
            target.unlink(missing_ok=True)
        else:
            raise FailedPrecondition(f"{target} is not what publish creates; leaving it")
        log.info("unpublished", target=str(target))

    def unstage(self, staging_path: Path) -> None:
        """Unmount whatever is mounted at ``staging_path``; not mounted is success.

        The directory is left in place: kubelet created it and removes it after this call.
        """
        self.mounter.unmount(staging_path)


def _ensure_dir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise FailedPrecondition(f"{path} exists and is not a directory") from None
    except OSError as exc:
        raise FailedPrecondition(f"cannot create directory {path}: {exc.strerror}") from None


def _ensure_file(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    except IsADirectoryError:
        raise FailedPrecondition(f"{path} exists and is a directory, not a file") from None
    except OSError as exc:
        raise FailedPrecondition(f"cannot create {path}: {exc.strerror}") from None
    os.close(fd)
