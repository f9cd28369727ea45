"""One power cycle per batch, the slot limit, and per-disk outcomes, against the simulator."""

from __future__ import annotations

import asyncio
import time

import pytest

from oxide_csi import errors
from tests.controller.attach.conftest import CoordinatorFactory, Rack, soon, until

INSTANCE = "instance-0"


async def test_seven_concurrent_attaches_share_one_power_cycle(
    rack: Rack, make_coordinator: CoordinatorFactory, held_stops: asyncio.Event
) -> None:
    coord = await make_coordinator()
    disks = await rack.disks("seven", 8)
    iid = await rack.instance_id(INSTANCE)

    tasks = [asyncio.create_task(coord.attach(d.id, INSTANCE, deadline=soon())) for d in disks[:7]]
    await until(lambda: coord.in_flight() == 7, "seven queued attaches")
    held_stops.set()
    results = await asyncio.gather(*tasks)

    assert [r.disk_id for r in results] == [d.id for d in disks[:7]]
    assert all(r.instance_id == iid and not r.already_attached for r in results)
    assert await rack.cycles(INSTANCE) == (1, 1)
    assert await rack.run_state(INSTANCE) == "running"
    for d in disks[:7]:
        assert await rack.disk_on(d.id) == iid

    # Boot disk + 7 = 8 slots used: the eighth is refused without touching the instance.
    with pytest.raises(errors.ResourceExhausted):
        await coord.attach(disks[7].id, INSTANCE, deadline=soon())
    assert await rack.cycles(INSTANCE) == (1, 1)
    assert await rack.disk_on(disks[7].id) is None


async def test_slot_check_counts_queued_attaches(
    rack: Rack, make_coordinator: CoordinatorFactory, held_stops: asyncio.Event
) -> None:
    """Eight concurrent attaches to boot + 7 free slots: exactly one is refused, before any
    power cycle could have made the listing show the others."""
    coord = await make_coordinator()
    disks = await rack.disks("race", 8)

    tasks = [asyncio.create_task(coord.attach(d.name, INSTANCE, deadline=soon())) for d in disks]
    await until(
        lambda: coord.in_flight() == 7 and sum(t.done() for t in tasks) == 1,
        "seven queued attaches and one refused",
    )
    held_stops.set()
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)

    refused = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(refused) == 1 and isinstance(refused[0], errors.ResourceExhausted)
    assert await rack.cycles(INSTANCE) == (1, 1)


async def test_queued_detach_frees_a_slot_and_shares_the_cycle(
    rack: Rack, make_coordinator: CoordinatorFactory
) -> None:
    coord = await make_coordinator(batch_window=0.3)
    disks = await rack.disks("mixed", 8)
    iid = await rack.instance_id(INSTANCE)
    await asyncio.gather(*(coord.attach(d.id, INSTANCE, deadline=soon()) for d in disks[:7]))
    assert await rack.cycles(INSTANCE) == (1, 1)

    # The instance is full; a detach queued first makes room for the attach in the same cycle.
    detach = asyncio.create_task(coord.detach(disks[0].id, INSTANCE, deadline=soon()))
    await until(lambda: coord.in_flight() == 1, "the detach to be queued")
    attached = await coord.attach(disks[7].id, INSTANCE, deadline=soon())
    await detach

    assert attached.disk_id == disks[7].id
    assert await rack.cycles(INSTANCE) == (2, 2)
    assert await rack.disk_on(disks[0].id) is None
    assert await rack.disk_on(disks[7].id) == iid


async def test_failing_disk_does_not_fail_the_others(
    rack: Rack, make_coordinator: CoordinatorFactory
) -> None:
    coord = await make_coordinator(batch_window=0.3)
    keep_a, keep_b, doomed = await rack.disks("partial", 3)
    iid = await rack.instance_id(INSTANCE)

    tasks = [
        asyncio.create_task(coord.attach(d.id, INSTANCE, deadline=soon()))
        for d in (keep_a, doomed, keep_b)
    ]
    await until(lambda: coord.in_flight() == 3, "three queued attaches")
    await rack.client.delete_disk(doomed.id)  # deleted while its attach waits in the batch
    a, lost, b = await asyncio.gather(*tasks, return_exceptions=True)

    assert isinstance(lost, errors.NotFound)
    assert not isinstance(a, BaseException) and a.disk_id == keep_a.id
    assert not isinstance(b, BaseException) and b.disk_id == keep_b.id
    assert await rack.disk_on(keep_a.id) == iid
    assert await rack.disk_on(keep_b.id) == iid
    assert await rack.cycles(INSTANCE) == (1, 1)
    assert await rack.run_state(INSTANCE) == "running"


async def test_start_refused_twice_then_succeeds(
    rack: Rack, make_coordinator: CoordinatorFactory
) -> None:
    coord = await make_coordinator()
    (disk,) = await rack.disks("capacity", 1)
    await rack.fail_starts(INSTANCE, 2)

    result = await coord.attach(disk.id, INSTANCE, deadline=soon())

    assert result.disk_id == disk.id
    assert await rack.requests("POST /v1/instances/{instance}/start") == 3
    assert await rack.cycles(INSTANCE) == (1, 1)
    assert await rack.run_state(INSTANCE) == "running"


async def test_deadline_passes_and_the_retry_joins_the_same_operation(
    rack: Rack, make_coordinator: CoordinatorFactory
) -> None:
    # The lookups before queuing take milliseconds; the batch window alone outlasts the
    # first caller's deadline by far.
    coord = await make_coordinator(batch_window=2.0)
    (disk,) = await rack.disks("slow", 1)

    with pytest.raises(errors.DeadlineExceeded):
        await coord.attach(disk.id, INSTANCE, deadline=time.monotonic() + 0.8)
    assert coord.in_flight() == 1  # the operation carries on without its caller

    result = await coord.attach(disk.id, INSTANCE, deadline=soon())

    assert result.disk_id == disk.id and not result.already_attached
    assert coord.in_flight() == 0
    assert await rack.cycles(INSTANCE) == (1, 1)


async def test_detach_deadline_then_retry_joins(
    rack: Rack, make_coordinator: CoordinatorFactory
) -> None:
    (disk,) = await rack.disks("slowdetach", 1)
    quick = await make_coordinator()
    await quick.attach(disk.id, INSTANCE, deadline=soon())
    coord = await make_coordinator(batch_window=2.0)

    with pytest.raises(errors.DeadlineExceeded):
        await coord.detach(disk.id, INSTANCE, deadline=time.monotonic() + 0.8)
    await coord.detach(disk.id, INSTANCE, deadline=soon())

    assert await rack.disk_on(disk.id) is None
    assert await rack.cycles(INSTANCE) == (2, 2)
