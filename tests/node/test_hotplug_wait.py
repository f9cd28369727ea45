"""A disk that arrives while NodeStage waits for it is noticed from the kernel's uevents
(pyudev's monitor on the kernel netlink source), not by polling; sysfs stays the truth."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from oxide_csi.node.device_identity import LoopBackingFileSource
from oxide_csi.node.devices import BlockDevice, DeviceFinder
from oxide_csi.node.uevents import BlockDeviceEvents
from tests.node.conftest import SERIAL_A, NodeFactory, mount_cap
from tests.node.plane import Plane

pytestmark = pytest.mark.root


class CountingFinder(DeviceFinder):
    """Counts scans; ``second_scan`` is set once the wait has listened and scanned again."""

    def __init__(self, device_dir: Path, events: BlockDeviceEvents) -> None:
        # No rescan before an hour: only a uevent can wake the wait within the test.
        super().__init__(
            sources=(LoopBackingFileSource(device_dir),),
            timeout=120,
            events=events,
            rescan_interval=3600,
        )
        self.scans = 0
        self.second_scan = threading.Event()

    def find(self, serial: str) -> BlockDevice | None:
        found = super().find(serial)
        self.scans += 1
        if self.scans >= 2:
            self.second_scan.set()
        return found


async def test_stage_finds_a_disk_plugged_while_it_waits(
    node_factory: NodeFactory, plane: Plane
) -> None:
    events = BlockDeviceEvents()
    finder = CountingFinder(plane.device_dir, events)
    async with node_factory(finder=finder) as node:
        staging = plane.staging()
        stage = asyncio.create_task(node.stage(staging, mount_cap("ext4")))
        # the device is not there: the wait listens, scans once more, then sleeps
        assert await asyncio.to_thread(finder.second_scan.wait, 30)
        assert not stage.done()
        plane.attach(SERIAL_A)  # the disk is hot-plugged now
        await stage
        assert events.seq >= 1  # woken by a uevent (the rescan is an hour away)
        assert finder.scans >= 3
        assert str(staging) in plane.mounts()
        await node.unstage(staging)
    events.close()


async def test_a_present_disk_needs_no_monitor(node_factory: NodeFactory, plane: Plane) -> None:
    events = BlockDeviceEvents()
    finder = CountingFinder(plane.device_dir, events)
    plane.attach(SERIAL_A)
    async with node_factory(finder=finder) as node:
        staging = plane.staging()
        await node.stage(staging, mount_cap("ext4"))
        assert finder.scans == 1
        assert not events.listening  # pyudev was never needed
        await node.unstage(staging)


async def test_without_uevents_the_wait_rescans(
    node_factory: NodeFactory, plane: Plane, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_libudev() -> None:
        raise OSError("libudev.so.1: cannot open shared object file")

    monkeypatch.setattr("oxide_csi.node.uevents._open_monitor", no_libudev)
    events = BlockDeviceEvents()
    finder = CountingFinder(plane.device_dir, events)
    finder.initial_delay, finder.max_delay = 0.02, 0.2  # the backoff rescans of old
    async with node_factory(finder=finder) as node:
        staging = plane.staging()
        stage = asyncio.create_task(node.stage(staging, mount_cap("ext4")))
        assert await asyncio.to_thread(finder.second_scan.wait, 30)
        plane.attach(SERIAL_A)
        await stage
        assert not events.listening and events.seq == 0
        await node.unstage(staging)
