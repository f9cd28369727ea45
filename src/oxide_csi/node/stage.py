"""Staging: what NodeStageVolume and NodeUnstageVolume do on the host.

Every operation is idempotent in the CSI sense -- repeating a call that already succeeded
succeeds without doing anything -- and refuses (rather than "fixes") a path that is in use for
something else. The servicer is expected to have passed request paths through
:class:`oxide_csi.node.paths.PathGuard` and to serialise calls per volume; this module
serialises only formatting (see :mod:`.format`).

Layout, as kubelet drives it: a filesystem volume is mounted once at the staging path and
bind-mounted into each pod's target directory (:mod:`.publish`); a block volume is not mounted
at stage at all (the device is only verified) and each target is a file with the device node
bind-mounted onto it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import structlog

from oxide_csi.errors import AlreadyExists, FailedPrecondition, Internal
from oxide_csi.failpoints import STAGE_AFTER_FORMAT, STAGE_AFTER_MOUNT, failpoint
from oxide_csi.node.blockdev import device_size
from oxide_csi.node.devices import BlockDevice, DeviceFinder
from oxide_csi.node.filesystem import (
    DEFAULT_CHECK_TIMEOUT,
    check_ext,
    check_mountable,
    grow_ext_offline,
    grow_xfs,
    is_ext,
)
from oxide_csi.node.format import DEFAULT_MKFS_TIMEOUT, check_fs_type, format_device
from oxide_csi.node.mountinfo import MountInfo
from oxide_csi.node.mounts import Mounter, check_mount_flags, ensure_dir, option_names
from oxide_csi.node.probe import Content, check_readable, probe
from oxide_csi.node.tools import DEFAULT_TOOL_TIMEOUT

log = structlog.get_logger(__name__)

#: What a blank disk is formatted with when neither the request nor the volume names a type.
DEFAULT_FS_TYPE = "ext4"


class Stager:
    """Stage and unstage volumes, built on a :class:`DeviceFinder` and a :class:`Mounter`."""

    def __init__(
        self,
        finder: DeviceFinder,
        mounter: Mounter,
        *,
        mkfs_timeout: float = DEFAULT_MKFS_TIMEOUT,
        tool_timeout: float = DEFAULT_TOOL_TIMEOUT,
        check_timeout: float = DEFAULT_CHECK_TIMEOUT,
    ) -> None:
        self.finder = finder
        self.mounter = mounter
        self.mkfs_timeout = mkfs_timeout
        self.tool_timeout = tool_timeout
        self.check_timeout = check_timeout

    def stage_filesystem(
        self,
        device: Path,
        serial: str,
        staging_path: Path,
        fs_type: str = "",
        mount_flags: Sequence[str] = (),
        *,
        known_new: bool = False,
        read_only: bool = False,
    ) -> None:
        """Mount the disk's filesystem at ``staging_path``, formatting a known-new blank disk.

        ``read_only`` (an Oxide read-only disk) mounts read-only and without journal replay:
        the device refuses writes, so a journal left unclean by a snapshot of a mounted disk
        could not be replayed anyway, and the mount would fail instead.

        ``fs_type`` empty means "whatever the disk holds" (and :data:`DEFAULT_FS_TYPE` if it
        must be formatted); a named type that differs from what the disk holds is
        :class:`FailedPrecondition` -- the volume cannot be used as asked, and reformatting it
        is out of the question. Already staged from the same device: success. Staged from
        another device or as another type: :class:`AlreadyExists`, as the spec asks for an
        incompatible existing stage.
        """
        requested = check_fs_type(fs_type) if fs_type else None
        flags = check_mount_flags([*mount_flags, *(("ro",) if read_only else ())])
        dev = self.finder.verify(device, serial)
        existing = self.mounter.top_mount(staging_path)
        if existing is not None:
            self._check_same_stage(existing, dev, staging_path, requested)
            if existing.fs_type == "xfs" and not existing.read_only:
                grow_xfs(staging_path, timeout=self.check_timeout)
            return
        ensure_dir(staging_path)
        found = probe(device, timeout=self.tool_timeout)
        if found.content is Content.FILESYSTEM:
            if requested is not None and found.fs_type != requested:
                raise FailedPrecondition(
                    f"{device} holds a {found.fs_type} filesystem, {requested} was requested; "
                    "it is never reformatted"
                )
            actual = check_mountable(found.fs_type, device)
            self._check_and_grow(dev, device, serial, actual, flags)
        elif found.content is Content.EMPTY:
            actual = requested or DEFAULT_FS_TYPE
            format_device(
                device,
                serial,
                actual,
                known_new=known_new,
                verify=self.finder.verify,
                timeout=self.mkfs_timeout,
            )
            failpoint(STAGE_AFTER_FORMAT)
        else:
            raise FailedPrecondition(
                f"{device} holds {found.detail}, not a filesystem on the whole disk (a "
                "partitioned OS image, say): a volume needs one there; it is never formatted"
            )
        options = list(flags)
        if read_only:
            options.append("norecovery" if actual == "xfs" else "noload")
        if actual == "xfs" and "nouuid" not in options:
            # Clones of one disk (from a snapshot or image) share the XFS UUID, and XFS refuses
            # a second mount of a UUID it already has mounted unless told not to check.
            options.append("nouuid")
        self.finder.verify(device, serial)
        mounted = self.mounter.mount(device, staging_path, actual, options)
        if (mounted.major, mounted.minor) != (dev.major, dev.minor):
            self.mounter.unmount(staging_path)
            raise Internal(
                f"mounted {device} at {staging_path} but mountinfo shows device "
                f"{mounted.major}:{mounted.minor}; undone"
            )
        if actual == "xfs" and not mounted.read_only:
            grow_xfs(staging_path, timeout=self.check_timeout)
        log.info("staged", device=str(device), serial=dev.serial, path=str(staging_path))
        failpoint(STAGE_AFTER_MOUNT)

    def _check_and_grow(
        self, dev: BlockDevice, device: Path, serial: str, fs_type: str, flags: Sequence[str]
    ) -> None:
        """The pre-mount check (and offline growth) of an existing ext filesystem.

        Skipped for a read-only stage (``e2fsck`` writes) and when the device is mounted
        somewhere already (``e2fsck`` refuses; the kernel shares the one superblock).
        """
        read_only = "ro" in option_names(flags)
        if not is_ext(fs_type) or read_only or self.mounter.mounts_of(dev.major, dev.minor):
            return
        self.finder.verify(device, serial)
        size = device_size(device)
        if not grow_ext_offline(device, size, timeout=self.check_timeout):
            check_ext(device, timeout=self.check_timeout)

    def stage_block(self, device: Path, serial: str, staging_path: Path) -> BlockDevice:
        """Block volumes are not mounted at stage; only prove the device is the right disk
        and answers reads (an unreadable device is :class:`Unavailable` here too).

        A filesystem mounted at ``staging_path`` means the volume was staged as a mount
        volume: the capability now asked for is incompatible (:class:`AlreadyExists`).
        """
        dev = self.finder.verify(device, serial)
        check_readable(device)
        existing = self.mounter.top_mount(staging_path)
        if existing is not None:
            raise AlreadyExists(
                f"{staging_path} has a filesystem mounted ({existing.source}); a block volume "
                "cannot be staged there"
            )
        return dev

    @staticmethod
    def _check_same_stage(
        existing: MountInfo, dev: BlockDevice, staging_path: Path, fs_type: str | None
    ) -> None:
        if (existing.major, existing.minor) != (dev.major, dev.minor) or existing.root != "/":
            raise AlreadyExists(
                f"{staging_path} is already mounted from another device "
                f"({existing.source}, {existing.major}:{existing.minor})"
            )
        if fs_type is not None and existing.fs_type != fs_type:
            raise AlreadyExists(
                f"{staging_path} is already mounted as {existing.fs_type}, not {fs_type}"
            )

    def unstage(self, staging_path: Path) -> None:
        """Unmount whatever is mounted at ``staging_path``; not mounted is success.

        The directory is left in place: the CO created it (CSI: "the CO SHALL be responsible
        for creating the directory") and kubelet removes it after this call.
        """
        self.mounter.unmount(staging_path)
