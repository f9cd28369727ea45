"""Publishing: what NodePublishVolume and NodeUnpublishVolume do on the host.

A filesystem volume is bind-mounted from its staging path into the pod's target directory; a
block volume's device node is bind-mounted onto a target file. Either way the pod gets a
mount of its own that can be read-only while the staging mount stays read-write, and
unpublishing is one unmount plus removing what publish created.

Per-mount flags (``nosuid``, ``nodev``, ``noexec``, ``noatime``...) need care: a plain bind
inherits those of the mount it copies, but a bind with *any* option (``ro`` for a read-only
publish, or a flag the publish request asks for) is a bind followed by a remount, and the
remount sets exactly the flags it is given -- so ``mount -o bind,ro`` of a ``nosuid,nodev``
staging mount yields a plain ``ro`` mount where setuid binaries work again. Such a bind
therefore repeats the staging mount's per-mount flags, plus every flag the request names.

Exclusive publishing (SINGLE_NODE_SINGLE_WRITER: one target at a time, the spec's
FAILED_PRECONDITION for a second one) is judged from mountinfo, looking only at mounts inside
``scope`` (the kubelet directory), so a mount an administrator made elsewhere does not count.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Sequence
from pathlib import Path

import structlog

from oxide_csi.errors import AlreadyExists, FailedPrecondition
from oxide_csi.node.blockdev import major_minor, stat_block_device
from oxide_csi.node.device_identity import check_expected_serial
from oxide_csi.node.devices import DeviceFinder
from oxide_csi.node.mountinfo import MountInfo
from oxide_csi.node.mounts import (
    Mounter,
    check_mount_flags,
    ensure_dir,
    ensure_file,
    per_mount_flags,
)

log = structlog.get_logger(__name__)


class Publisher:
    """Publish and unpublish volumes for pods."""

    def __init__(self, finder: DeviceFinder, mounter: Mounter, *, scope: Path) -> None:
        self.finder = finder
        self.mounter = mounter
        self.scope = scope

    def publish_mount(
        self,
        staging_path: Path,
        target: Path,
        readonly: bool,
        mount_flags: Sequence[str] = (),
        *,
        serial: str | None = None,
        exclusive: bool = False,
    ) -> None:
        """Bind the staged filesystem into ``target`` (a directory, created if absent).

        With ``serial``, the device under the staging mount must carry it: a staging path that
        holds some other volume is "not staged" for this one (:class:`FailedPrecondition`).
        """
        requested = check_mount_flags(mount_flags)
        staged = self.mounter.top_mount(staging_path)
        if staged is None:
            raise FailedPrecondition(f"volume is not staged: nothing is mounted at {staging_path}")
        if serial is not None:
            want = check_expected_serial(serial)
            found = self.finder.identify_number(staged.major, staged.minor)
            if found.serial != want:
                raise FailedPrecondition(
                    f"{staging_path} holds the disk with serial {found.serial!r}, not {want!r}"
                )
        key = (staged.major, staged.minor, staged.root)
        # A bind copies the staging mount's flags: staged read-only means published read-only.
        expect_ro = readonly or "ro" in staged.options
        existing = self.mounter.top_mount(target)
        if existing is not None:
            if (existing.major, existing.minor, existing.root) == key and (
                "ro" in existing.options
            ) == expect_ro:
                return
            raise AlreadyExists(
                f"{target} is already mounted, from a different volume or with a different "
                "read-only setting"
            )
        if exclusive:
            self._refuse_second_target(
                lambda m: (m.major, m.minor, m.root) == key, {staging_path, target}
            )
        ensure_dir(target)
        options = [*per_mount_flags(staged.options), *requested] if readonly or requested else []
        self.mounter.bind(staging_path, target, readonly=readonly, options=options)
        log.info("published", staging=str(staging_path), target=str(target), readonly=readonly)

    def publish_block(
        self,
        device: Path,
        serial: str,
        target_file: Path,
        readonly: bool,
        *,
        exclusive: bool = False,
    ) -> None:
        """Bind the device node onto ``target_file`` (created empty if absent).

        ``readonly`` makes the bind read-only, but that does not stop writes: the kernel checks
        a mount's read-only flag for files and directories, not for opening a device node (a
        test pins this). What keeps a read-only pod from writing is the container's device
        permission, which kubelet sets to ``r`` for a read-only block volume. The read-only
        flag still records what was asked, so a second publish asking otherwise is refused.
        The device's identity is verified first.
        """
        dev = self.finder.verify(device, serial)
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
        if exclusive:
            # A bind of a device node shows in mountinfo as the node's filesystem (devtmpfs)
            # with the node's path inside it as root.
            fs_dev = (os.major(dev_st.st_dev), os.minor(dev_st.st_dev))
            root = "/" + dev.name
            self._refuse_second_target(
                lambda m: (m.major, m.minor) == fs_dev and m.root == root, {target_file}
            )
        ensure_file(target_file)
        self.mounter.bind(device, target_file, readonly=readonly)
        major, minor = major_minor(dev_st)
        log.info("published block", device=f"{major}:{minor}", target=str(target_file))

    def _refuse_second_target(
        self, same_volume: Callable[[MountInfo], bool], allowed: set[Path]
    ) -> None:
        """:class:`FailedPrecondition` if the volume is published at another target already."""
        allowed_text = {str(p) for p in allowed}
        for mount in self.mounter.mounts():
            if mount.mount_point in allowed_text or not same_volume(mount):
                continue
            if Path(mount.mount_point).is_relative_to(self.scope):
                raise FailedPrecondition(
                    f"the volume is single-writer and already published at {mount.mount_point}"
                )

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
