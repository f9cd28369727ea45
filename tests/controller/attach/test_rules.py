"""What attach and detach answer without a power cycle, and when they leave the instance alone."""

from __future__ import annotations

import asyncio

import pytest

from oxide_csi import errors
from tests.controller.attach.conftest import CoordinatorFactory, Rack, soon, until
from tests.controller.attach.memory_store import MemoryAttachRecordStore

INSTANCE = "instance-0"
OTHER = "instance-1"
MISSING_ID = "6b1d3c2e-0000-4000-8000-000000000000"


async def test_already_attached_succeeds_without_a_stop(
    rack: Rack, make_coordinator: CoordinatorFactory
) -> None:
    coord = await make_coordinator()
    (disk,) = await rack.disks("again", 1)
    await coord.attach(disk.id, INSTANCE, deadline=soon())
    assert await rack.cycles(INSTANCE) == (1, 1)

    iid = await rack.instance_id(INSTANCE)
    again = await coord.attach(disk.name, iid, deadline=soon())  # by name and by id this time

    assert again.already_attached and again.disk_id == disk.id and again.instance_id == iid
    assert await rack.cycles(INSTANCE) == (1, 1)


async def test_attached_elsewhere_is_failed_precondition(
    rack: Rack, make_coordinator: CoordinatorFactory
) -> None:
    coord = await make_coordinator()
    (disk,) = await rack.disks("elsewhere", 1)
    await coord.attach(disk.id, INSTANCE, deadline=soon())

    with pytest.raises(errors.FailedPrecondition):
        await coord.attach(disk.id, OTHER, deadline=soon())
    assert await rack.cycles(OTHER) == (0, 0)


async def test_missing_disk_or_instance_is_not_found(
    rack: Rack, make_coordinator: CoordinatorFactory
) -> None:
    coord = await make_coordinator()
    (disk,) = await rack.disks("lonely", 1)

    with pytest.raises(errors.NotFound):
        await coord.attach(MISSING_ID, INSTANCE, deadline=soon())
    with pytest.raises(errors.NotFound):
        await coord.attach(disk.id, "no-such-instance", deadline=soon())
    assert await rack.cycles(INSTANCE) == (0, 0)


async def test_detach_is_idempotent(rack: Rack, make_coordinator: CoordinatorFactory) -> None:
    coord = await make_coordinator()
    attached, loose = await rack.disks("idem", 2)
    await coord.attach(attached.id, INSTANCE, deadline=soon())
    await coord.attach(loose.id, OTHER, deadline=soon())

    await coord.detach(attached.id, INSTANCE, deadline=soon())
    assert await rack.disk_on(attached.id) is None
    assert await rack.cycles(INSTANCE) == (2, 2)

    # Detached already, attached to another instance, disk gone, instance gone: all success.
    await coord.detach(attached.id, INSTANCE, deadline=soon())
    await coord.detach(loose.id, INSTANCE, deadline=soon())
    await coord.detach(MISSING_ID, INSTANCE, deadline=soon())
    await coord.detach(attached.id, "no-such-instance", deadline=soon())
    assert await rack.cycles(INSTANCE) == (2, 2)
    assert await rack.disk_on(loose.id) == await rack.instance_id(OTHER)


async def test_boot_disk_is_never_detached(
    rack: Rack, make_coordinator: CoordinatorFactory
) -> None:
    coord = await make_coordinator()
    boot = (await rack.client.get_instance(INSTANCE)).boot_disk_id
    assert boot is not None

    with pytest.raises(errors.FailedPrecondition):
        await coord.detach(boot, INSTANCE, deadline=soon())
    assert await rack.cycles(INSTANCE) == (0, 0)


async def test_stopped_instance_stays_stopped(
    rack: Rack, make_coordinator: CoordinatorFactory
) -> None:
    await rack.stop(OTHER)
    before = await rack.cycles(OTHER)
    coord = await make_coordinator()
    one, two = await rack.disks("cold", 2)

    await asyncio.gather(
        coord.attach(one.id, OTHER, deadline=soon()),
        coord.attach(two.id, OTHER, deadline=soon()),
    )
    await coord.detach(one.id, OTHER, deadline=soon())

    assert await rack.cycles(OTHER) == before
    assert await rack.run_state(OTHER) == "stopped"
    assert await rack.disk_on(one.id) is None
    assert await rack.disk_on(two.id) == await rack.instance_id(OTHER)


async def test_other_operation_on_the_same_disk_is_aborted(
    rack: Rack, make_coordinator: CoordinatorFactory
) -> None:
    coord = await make_coordinator(batch_window=0.3)
    (disk,) = await rack.disks("busy", 1)

    pending = asyncio.create_task(coord.attach(disk.id, INSTANCE, deadline=soon()))
    await until(lambda: coord.in_flight() == 1, "the attach to be queued")
    with pytest.raises(errors.Aborted):
        await coord.attach(disk.id, OTHER, deadline=soon())
    with pytest.raises(errors.Aborted):
        await coord.detach(disk.id, INSTANCE, deadline=soon())
    await pending

    assert await rack.cycles(OTHER) == (0, 0)
    assert await rack.cycles(INSTANCE) == (1, 1)


async def test_instances_cycle_independently(
    rack: Rack, make_coordinator: CoordinatorFactory
) -> None:
    coord = await make_coordinator()
    a0, a1, b0 = await rack.disks("both", 3)

    await asyncio.gather(
        coord.attach(a0.id, INSTANCE, deadline=soon()),
        coord.attach(a1.id, INSTANCE, deadline=soon()),
        coord.attach(b0.id, OTHER, deadline=soon()),
    )

    assert await rack.cycles(INSTANCE) == (1, 1)
    assert await rack.cycles(OTHER) == (1, 1)


async def test_close_lets_a_cycle_that_stopped_its_instance_finish(
    rack: Rack, make_coordinator: CoordinatorFactory
) -> None:
    """Shutdown (SIGTERM) never leaves an instance off: the cycle that stopped it runs on
    until it is started again; work that missed the batch fails with Unavailable."""
    store = MemoryAttachRecordStore()
    coord = await make_coordinator(batch_window=1.0, record=store)
    first, late = await rack.disks("closing", 2)
    pending = asyncio.create_task(coord.attach(first.id, INSTANCE, deadline=soon()))
    await until(lambda: coord.in_flight() == 1, "the attach to be queued")
    await rack.wait_run_state(INSTANCE, {"stopping", "stopped"})

    closing = asyncio.create_task(coord.close())
    await until(lambda: coord.workers() == 0 or closing.done(), "close to begin")
    with pytest.raises(errors.Unavailable):
        await coord.attach(late.id, INSTANCE, deadline=soon())
    await closing

    await pending  # applied by the cycle that was allowed to finish
    assert await rack.run_state(INSTANCE) == "running"
    assert await rack.cycles(INSTANCE) == (1, 1)
    assert await rack.disk_on(first.id) == await rack.instance_id(INSTANCE)
    assert await store.load_all() == []
