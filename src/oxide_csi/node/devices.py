"""Find the block device of an attached disk by its serial, and re-check it before harm.

Discovery reads sysfs directly rather than asking udev: no udev daemon runs in the node
container, and while pyudev's enumeration works without the daemon (libudev reads sysfs
itself), libudev offers no supported way to point it at another sysfs root -- which the tests
need, to present NVMe devices this machine does not have. Walking ``<sysfs>/block`` is a few
lines and is exactly what libudev would do.

The device node is taken as ``<dev>/<kernel name>`` (devtmpfs names nodes after the kernel
device) and is only trusted once ``stat`` shows it is a block device with the same
``major:minor`` as sysfs reports, so a stale node cannot stand in for the disk.

Waiting for a disk that is not there yet sleeps until the kernel announces a block device
(:mod:`oxide_csi.node.uevents`, pyudev's monitor) and then scans again; a slow rescan covers lost
events, and where no uevents can be had the wait rescans with backoff as before.
"""

from __future__ import annotations

import asyncio
import os
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from oxide_csi.errors import Unavailable
from oxide_csi.node.blockdev import major_minor, stat_block_device, sysfs_block_dir
from oxide_csi.node.device_identity import IdentitySource, NvmeSerialSource, check_expected_serial
from oxide_csi.node.uevents import BlockDeviceEvents

log = structlog.get_logger(__name__)

DEFAULT_SYSFS_ROOT = Path("/sys")
DEFAULT_DEV_ROOT = Path("/dev")


@dataclass(frozen=True)
class BlockDevice:
    """A whole-disk block device and the identity read from it."""

    name: str
    path: Path
    serial: str
    kind: str
    major: int
    minor: int
    size_bytes: int


@dataclass(frozen=True)
class _Candidate:
    name: str
    block_dir: Path
    source: IdentitySource


def backoff_delays(initial: float, maximum: float) -> Iterator[float]:
    """``initial``, doubling, capped at ``maximum``: how long to wait between scans."""
    delay = initial
    while True:
        yield delay
        delay = min(delay * 2, maximum)


class DeviceFinder:
    """Scans sysfs for disks, matches serials, and verifies a device's identity.

    ``sources`` decides which kinds of device count as disks (see
    :func:`oxide_csi.node.device_identity.identity_sources`): NVMe on a real instance (the default),
    the dev device directory's loop devices in dev mode.
    """

    def __init__(
        self,
        *,
        sysfs_root: Path = DEFAULT_SYSFS_ROOT,
        dev_root: Path = DEFAULT_DEV_ROOT,
        sources: Sequence[IdentitySource] | None = None,
        timeout: float = 60.0,
        initial_delay: float = 0.05,
        max_delay: float = 2.0,
        events: BlockDeviceEvents | None = None,
        rescan_interval: float = 10.0,
    ) -> None:
        """``events``: wake a waiting :meth:`wait_for_async` on block uevents, rescanning every
        ``rescan_interval`` seconds anyway; without, waits rescan with backoff from
        ``initial_delay`` to ``max_delay``."""
        if timeout < 0 or initial_delay <= 0 or max_delay < initial_delay:
            raise ValueError("timeout >= 0 and 0 < initial_delay <= max_delay required")
        self.sysfs_root = sysfs_root
        self.dev_root = dev_root
        self.sources: tuple[IdentitySource, ...] = tuple(sources or (NvmeSerialSource(),))
        self.timeout = timeout
        self.initial_delay = initial_delay
        self.max_delay = max_delay
        self.events = events
        self.rescan_interval = rescan_interval

    # -- scanning ---------------------------------------------------------------------------

    def _source_for(self, kernel_name: str) -> IdentitySource | None:
        for source in self.sources:
            if source.handles(kernel_name):
                return source
        return None

    def _candidates(self) -> list[_Candidate]:
        block_root = self.sysfs_root / "block"
        try:
            names = sorted(os.listdir(block_root))
        except OSError as exc:
            raise Unavailable(f"cannot list {block_root}: {exc.strerror}") from None
        found = []
        for name in names:
            source = self._source_for(name)
            if source is None:
                continue
            block_dir = block_root / name
            if _read_text(block_dir / "hidden") == "1":
                continue
            found.append(_Candidate(name=name, block_dir=block_dir, source=source))
        return found

    def _device(self, cand: _Candidate, serial: str) -> BlockDevice | None:
        """The device for a candidate whose serial matched, or None if its node is not ready."""
        dev = _read_text(cand.block_dir / "dev")
        size = _read_text(cand.block_dir / "size")
        if dev is None or size is None:
            return None
        try:
            major_s, minor_s = dev.split(":")
            major, minor, sectors = int(major_s), int(minor_s), int(size)
        except ValueError:
            return None
        node = self.dev_root / cand.name
        try:
            st = os.stat(node)
        except OSError:
            return None
        if not stat.S_ISBLK(st.st_mode) or major_minor(st) != (major, minor):
            return None
        return BlockDevice(
            name=cand.name,
            path=node,
            serial=serial,
            kind=cand.source.kind,
            major=major,
            minor=minor,
            size_bytes=sectors * 512,
        )

    def find(self, serial: str) -> BlockDevice | None:
        """One scan: the device whose serial is ``serial``, or None if none is there (yet).

        Two devices with the same serial are refused (:class:`Unavailable`): picking one would be
        a guess, and a disk detaching elsewhere may resolve it.
        """
        want = check_expected_serial(serial)
        matches: list[BlockDevice] = []
        pending = False
        for cand in self._candidates():
            try:
                got = cand.source.read(cand.block_dir)
            except OSError:
                continue  # unreadable identity: not provably ours, keep looking
            if got != want:
                continue
            device = self._device(cand, got)
            if device is None:
                pending = True
            else:
                matches.append(device)
        if len(matches) > 1:
            names = ", ".join(d.name for d in matches)
            raise Unavailable(f"several devices carry serial {want!r} ({names}); not guessing")
        if not matches and pending:
            log.debug("device seen in sysfs, node not ready", serial=want)
        return matches[0] if matches else None

    def wait_for(self, serial: str, wait_seconds: float | None = None) -> BlockDevice:
        """Scan until the device appears, sleeping with bounded exponential backoff.

        Raises :class:`Unavailable` once ``wait_seconds`` (default: the finder's ``timeout``)
        have passed: the volume exists (the controller attached it), the device has just not
        shown up on this node yet, so the caller should retry -- not conclude anything.
        """
        want = check_expected_serial(serial)
        limit = self.timeout if wait_seconds is None else wait_seconds
        deadline = time.monotonic() + limit
        for delay in backoff_delays(self.initial_delay, self.max_delay):
            device = self.find(want)
            if device is not None:
                return device
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            time.sleep(min(delay, remaining))
        raise Unavailable(f"no block device with serial {want!r} appeared within {limit:g}s")

    async def wait_for_async(self, serial: str, wait_seconds: float | None = None) -> BlockDevice:
        """:meth:`wait_for` for an event loop: scans in a thread, sleeps on the loop until a
        block uevent arrives (or, without uevents, with backoff)."""
        want = check_expected_serial(serial)
        limit = self.timeout if wait_seconds is None else wait_seconds
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit
        device = await asyncio.to_thread(self.find, want)
        if device is not None:
            return device  # the usual case: no monitor, no pyudev
        events = self.events if self.events is not None and self.events.listen() else None
        delays = backoff_delays(self.initial_delay, self.max_delay)
        while True:
            seq = events.seq if events is not None else 0
            # Scanned again once listening: a device that came just before is not missed.
            device = await asyncio.to_thread(self.find, want)
            if device is not None:
                return device
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            if events is not None:
                await events.wait_beyond(seq, min(self.rescan_interval, remaining))
            else:
                await asyncio.sleep(min(next(delays), remaining))
        raise Unavailable(f"no block device with serial {want!r} appeared within {limit:g}s")

    # -- verification -----------------------------------------------------------------------

    def identify(self, device_path: Path) -> BlockDevice:
        """Read the identity of the device at ``device_path`` now, from the kernel's view."""
        st = stat_block_device(device_path)
        return self.identify_number(*major_minor(st), path=device_path)

    def identify_number(self, major: int, minor: int, *, path: Path | None = None) -> BlockDevice:
        """Read the identity of block device ``major:minor`` (e.g. the device under a mount).

        ``path`` is the node it was reached through, for messages and the result; by default
        the ``<dev>/<kernel name>`` node.
        """
        block_dir = sysfs_block_dir(self.sysfs_root, major, minor)
        name = block_dir.name
        shown = path if path is not None else self.dev_root / name
        source = self._source_for(name)
        if source is None:
            raise Unavailable(f"{shown} ({name}) is not a disk of a kind this node knows")
        try:
            serial = source.read(block_dir)
        except OSError as exc:
            raise Unavailable(f"cannot read the identity of {shown}: {exc}") from None
        if not serial:
            raise Unavailable(f"{shown} ({name}) has no {source.kind} identity this node accepts")
        sectors = _read_text(block_dir / "size")
        return BlockDevice(
            name=name,
            path=shown,
            serial=serial,
            kind=source.kind,
            major=major,
            minor=minor,
            size_bytes=int(sectors) * 512 if sectors and sectors.isdigit() else 0,
        )

    def verify(self, device_path: Path, serial: str) -> BlockDevice:
        """Re-read the identity of ``device_path`` and insist it is ``serial``.

        Called right before anything destructive or binding (mkfs, mount): a device name can be
        reused by another disk between discovery and use. A mismatch is :class:`Unavailable`
        -- retry, rediscover -- never a reason to proceed.
        """
        want = check_expected_serial(serial)
        device = self.identify(device_path)
        if device.serial != want:
            raise Unavailable(
                f"{device_path} carries serial {device.serial!r}, expected {want!r}; refusing"
            )
        return device

    # -- accounting -------------------------------------------------------------------------

    def unmanaged_disk_count(self, is_managed: Callable[[str], bool]) -> int:
        """How many disks the instance has that are not this plugin's (boot disk and others).

        The node reports ``max_volumes_per_node`` as the instance's disk slots minus these. A
        disk whose identity cannot be read is counted: it occupies a slot whoever owns it.
        """
        count = 0
        for cand in self._candidates():
            try:
                serial = cand.source.read(cand.block_dir)
            except OSError:
                count += 1
                continue
            if serial is None:
                continue  # e.g. an unbound loop device: not a disk at all
            if not is_managed(serial):
                count += 1
        return count


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None
