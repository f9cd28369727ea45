"""Graceful power-off in the attach cycle: the guest first, Oxide's hard stop as the fallback.

A node plugin's agent runs in this process on the file channel and plays instance-0's guest:
its power-off is the simulator's guest-power-off hook, and the simulator gives the guest a new
boot id at every start (as dev mode does). The counts come from ``/sim/stats``.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from oxide_csi.controller.attach.fence import FenceLost
from oxide_csi.controller.attach.graceful import GracefulPowerOff
from oxide_csi.poweroff.agent import GuestAgent, read_boot_id
from oxide_csi.poweroff.files import FileChannel
from oxide_csi.poweroff.messages import ControllerChannel, Heartbeat, PowerOffRequest
from tests.controller.attach.conftest import CoordinatorFactory, Rack, soon, until
from tests.controller.attach.memory_store import MemoryAttachRecordStore

INSTANCE = "instance-0"


class NewBoot:
    """Simulator hook: instance-0's guest gets a new boot id at every start."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.path.write_text(f"{uuid.uuid4()}\n")

    def before_running(self, instance: dict[str, Any], disks: list[dict[str, Any]]) -> None:
        if instance["name"] == INSTANCE:
            self.path.write_text(f"{uuid.uuid4()}\n")

    def after_stopped(self, instance: dict[str, Any], disks: list[dict[str, Any]]) -> None:
        return None


@pytest.fixture
def channel(tmp_path: Path) -> FileChannel:
    return FileChannel(tmp_path / "poweroff", poll=0.01)


@contextlib.asynccontextmanager
async def guest(
    rack: Rack, channel: FileChannel, tmp_path: Path, *, handler: bool = True
) -> AsyncIterator[GuestAgent]:
    boot = NewBoot(tmp_path / "boot_id")
    rack.sim.add_instance_hook(boot)
    url = f"{rack.sim.url}/sim/instances/{INSTANCE}/guest-power-off"

    def power_off() -> None:
        httpx.post(url, timeout=10).raise_for_status()

    agent = GuestAgent(
        channel,
        instance_id=await rack.instance_id(INSTANCE),
        boot_id=lambda: read_boot_id(boot.path),
        power_off=power_off if handler else None,
        period=0.2,
        duration=5.0,
    )
    close = agent.start()
    try:
        await until(lambda: bool(list(channel.directory.glob("heartbeats/*.json"))), "a beat")
        yield agent
    finally:
        await close()


async def power_offs(rack: Rack) -> tuple[int, int]:
    entry = (await rack.stats())["instances"][INSTANCE]
    return int(entry["guest_power_offs"]), int(entry["hard_stops"])


def graceful(
    channel: ControllerChannel, seen: list[tuple[str, str]], timeout: float
) -> GracefulPowerOff:
    return GracefulPowerOff(
        channel, timeout=timeout, on_power_off=lambda inst, how, why: seen.append((how, why))
    )


async def test_a_live_guest_powers_itself_off(
    rack: Rack, make_coordinator: CoordinatorFactory, channel: FileChannel, tmp_path: Path
) -> None:
    seen: list[tuple[str, str]] = []
    coord = await make_coordinator(power_off=graceful(channel, seen, timeout=30))
    disks = await rack.disks("gentle", 2)
    async with guest(rack, channel, tmp_path):
        await coord.attach(disks[0].id, INSTANCE, deadline=soon())
        assert await power_offs(rack) == (1, 0)
        # the next cycle finds the heartbeat of the new boot (renewed after the run began)
        await coord.attach(disks[1].id, INSTANCE, deadline=soon())
    assert await power_offs(rack) == (2, 0)
    assert seen == [("guest", ""), ("guest", "")]
    assert await rack.run_state(INSTANCE) == "running"
    assert list((channel.directory / "requests").iterdir()) == [], "requests are withdrawn"


async def test_without_a_heartbeat_the_stop_is_hard_at_once(
    rack: Rack, make_coordinator: CoordinatorFactory, channel: FileChannel
) -> None:
    seen: list[tuple[str, str]] = []
    coord = await make_coordinator(power_off=graceful(channel, seen, timeout=3600))
    disk = (await rack.disks("hard", 1))[0]
    await coord.attach(disk.id, INSTANCE, deadline=soon())
    assert await power_offs(rack) == (0, 1)
    assert seen == [("hard", "no-heartbeat")]
    assert not (channel.directory / "requests").exists()


async def test_a_silent_guest_is_stopped_hard_after_the_timeout(
    rack: Rack, make_coordinator: CoordinatorFactory, channel: FileChannel, tmp_path: Path
) -> None:
    seen: list[tuple[str, str]] = []
    coord = await make_coordinator(power_off=graceful(channel, seen, timeout=0.5))
    disk = (await rack.disks("silent", 1))[0]
    async with guest(rack, channel, tmp_path, handler=False):
        await coord.attach(disk.id, INSTANCE, deadline=soon())
    assert await power_offs(rack) == (0, 1)
    assert seen == [("hard", "timeout")]
    assert list((channel.directory / "requests").iterdir()) == []


async def test_a_heartbeat_of_the_previous_boot_is_nobody(
    rack: Rack, client: Any, channel: FileChannel
) -> None:
    """Renewed before the current run began, a heartbeat names a boot that is over: after
    waiting out its lifetime for the new plugin, the stop is hard and nobody was asked."""
    await rack.stop(INSTANCE)
    await client.start_instance(INSTANCE)
    inst = await client.wait_instance(INSTANCE, {"running"})
    began = inst.time_run_state_updated.timestamp()
    old = Heartbeat(inst.id, "old-boot", began - 60, began - 0.1, duration=1.0)
    await channel.beat(old)
    seen: list[tuple[str, str]] = []
    power_off = graceful(channel, seen, timeout=3600)
    await power_off(client, inst, deadline=soon(), fence=lambda d: d)
    assert seen == [("hard", "no-heartbeat")]
    assert not (channel.directory / "requests").exists()


async def test_no_request_once_the_fence_is_lost(
    rack: Rack, client: Any, channel: FileChannel
) -> None:
    inst = await client.get_instance(INSTANCE)
    await channel.beat(Heartbeat(inst.id, "boot", time.time(), time.time(), 60.0))

    def lost(deadline: float) -> float:
        raise FenceLost("someone else's now")

    with pytest.raises(FenceLost):
        await graceful(channel, [], timeout=30)(client, inst, deadline=soon(), fence=lost)
    assert not (channel.directory / "requests").exists()
    assert await rack.run_state(INSTANCE) == "running"


async def test_sweep_removes_expired_requests_only(channel: FileChannel) -> None:
    now = time.time()
    old = PowerOffRequest("a" * 8, "run", "boot", now - 100, now - 100, now - 1)
    live = PowerOffRequest("b" * 8, "run", "boot", now - 100, now, now + 100)
    await channel.send(old)
    await channel.send(live)
    (channel.directory / "requests" / "c.json").write_text("{not json")
    assert await channel.sweep(now) == 2
    left = [json.loads(p.read_text())["id"] for p in (channel.directory / "requests").iterdir()]
    assert left == [live.id]


async def test_the_record_comes_first_and_an_unwritable_request_is_a_hard_stop(
    rack: Rack, make_coordinator: CoordinatorFactory, channel: FileChannel, tmp_path: Path
) -> None:
    """The cycle's record is saved before the request is sent; a request that cannot be
    written means nobody will hear it: Oxide's stop at once."""
    store = MemoryAttachRecordStore()
    found: list[Any] = []

    class Broken(FileChannel):
        async def send(self, request: PowerOffRequest) -> None:
            found.append(await store.load(request.instance_id))
            raise OSError("disk full")

    broken = Broken(channel.directory, poll=0.01)
    seen: list[tuple[str, str]] = []
    coord = await make_coordinator(record=store, power_off=graceful(broken, seen, timeout=3600))
    disk = (await rack.disks("unwritable", 1))[0]
    async with guest(rack, channel, tmp_path):
        await coord.attach(disk.id, INSTANCE, deadline=soon())
    assert [r.phase.value for r in found] == ["stopping"] and found[0].was_running
    assert seen == [("hard", "request-failed")]
    assert await power_offs(rack) == (0, 1)
