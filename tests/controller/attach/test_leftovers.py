"""Crash leftovers never undo a later decision: after recovery the disk is where the last CSI
call put it.

Each test writes the record a controller killed mid-cycle leaves behind (its instance being
stopped, or stopped), then makes the call that contradicts the leftover -- before recovery
runs, or while recovery waits for the instance to stop -- and checks where the disk ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from oxide_csi.controller.attach import (
    AttachCoordinator,
    AttachRecord,
    OpKind,
    OpRecord,
    Phase,
    StartPolicy,
)
from oxide_csi.oxide import Disk
from tests.controller.attach.conftest import Rack, rack_of, soon, until
from tests.controller.attach.memory_store import MemoryAttachRecordStore

INSTANCE = "instance-0"
OTHER = "instance-1"


class Crashed:
    """A rack whose instance-0 takes 0.5 s to stop, and the record a dead controller left."""

    def __init__(self, rack: Rack) -> None:
        self.rack = rack
        self.store = MemoryAttachRecordStore()
        self.coord = AttachCoordinator(
            rack.client,
            record=self.store,
            batch_window=0.05,
            op_timeout=30,
            start_policy=StartPolicy(initial=0.02, maximum=0.1),
        )

    async def leave(self, kind: OpKind, disk: Disk, *, stopping: bool = True) -> str:
        """The dead controller's record for ``kind`` of ``disk`` on instance-0, which it had
        begun to stop (``stopping``) or not yet."""
        iid = await self.rack.instance_id(INSTANCE)
        ops = (OpRecord(kind, disk.id),)
        await self.store.save(AttachRecord(iid, INSTANCE, True, Phase.STOPPING, ops))
        if stopping:
            await self.rack.client.stop_instance(INSTANCE)
        return iid


@pytest.fixture
async def crashed(tmp_path: Path) -> AsyncIterator[Crashed]:
    async with rack_of(instances=2, stop_seconds=0.5, state_dir=tmp_path) as rack:
        made = Crashed(rack)
        try:
            yield made
        finally:
            await made.coord.close()


async def test_unpublish_before_recovery_cancels_a_leftover_attach(crashed: Crashed) -> None:
    (disk,) = await crashed.rack.disks("early", 1)
    iid = await crashed.leave(OpKind.ATTACH, disk)

    await crashed.coord.detach(disk.id, iid, deadline=soon())  # arrives first
    await crashed.coord.start()  # then recovery

    assert await crashed.rack.disk_on(disk.id) is None
    assert await crashed.rack.run_state(INSTANCE) == "running"
    assert await crashed.store.load_all() == []


async def test_unpublish_while_recovery_waits_for_the_stop_cancels_a_leftover_attach(
    crashed: Crashed,
) -> None:
    (disk,) = await crashed.rack.disks("late", 1)
    iid = await crashed.leave(OpKind.ATTACH, disk)
    recovery = asyncio.create_task(crashed.coord.start())
    await until(lambda: crashed.coord.workers() == 1, "recovery to take up the record")
    assert await crashed.rack.run_state(INSTANCE) == "stopping"

    await crashed.coord.detach(disk.id, iid, deadline=soon())
    await recovery

    assert await crashed.rack.disk_on(disk.id) is None
    assert await crashed.rack.run_state(INSTANCE) == "running"
    assert await crashed.rack.cycles(INSTANCE) == (1, 1)  # the dead controller's stop only
    assert await crashed.store.load_all() == []


async def test_unpublish_of_a_leftover_that_never_stopped_costs_no_cycle(
    crashed: Crashed,
) -> None:
    (disk,) = await crashed.rack.disks("never", 1)
    iid = await crashed.leave(OpKind.ATTACH, disk, stopping=False)  # died before its stop

    await crashed.coord.detach(disk.id, iid, deadline=soon())
    await crashed.coord.start()

    assert await crashed.rack.disk_on(disk.id) is None
    assert await crashed.rack.cycles(INSTANCE) == (0, 0)
    assert await crashed.store.load_all() == []


@pytest.mark.parametrize("order", ["before recovery", "while recovery waits"])
async def test_publish_cancels_a_leftover_detach(crashed: Crashed, order: str) -> None:
    (disk,) = await crashed.rack.disks("mirror", 1)
    await crashed.coord.attach(disk.id, INSTANCE, deadline=soon())
    iid = await crashed.leave(OpKind.DETACH, disk)

    if order == "before recovery":
        await crashed.coord.attach(disk.id, iid, deadline=soon())
        await crashed.coord.start()
    else:
        recovery = asyncio.create_task(crashed.coord.start())
        await until(lambda: crashed.coord.workers() == 1, "recovery to take up the record")
        await crashed.coord.attach(disk.id, iid, deadline=soon())
        await recovery

    assert await crashed.rack.disk_on(disk.id) == iid
    assert await crashed.rack.run_state(INSTANCE) == "running"
    assert await crashed.store.load_all() == []


async def test_publish_elsewhere_wins_over_a_leftover_attach(crashed: Crashed) -> None:
    (disk,) = await crashed.rack.disks("moved", 1)
    await crashed.leave(OpKind.ATTACH, disk)
    recovery = asyncio.create_task(crashed.coord.start())

    result = await crashed.coord.attach(disk.id, OTHER, deadline=soon())
    await recovery

    assert await crashed.rack.disk_on(disk.id) == result.instance_id
    assert await crashed.rack.run_state(INSTANCE) == "running"
    assert await crashed.rack.run_state(OTHER) == "running"
