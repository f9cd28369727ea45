"""Recovery from records left behind: by a crash (hand-written here) or by a start that failed."""

from __future__ import annotations

from pathlib import Path

import pytest

from oxide_csi import errors
from oxide_csi.controller.attach import (
    AttachRecord,
    FileAttachRecordStore,
    OpKind,
    OpRecord,
    Phase,
)
from tests.controller.attach.conftest import CoordinatorFactory, Rack, soon
from tests.controller.attach.memory_store import MemoryAttachRecordStore

INSTANCE = "instance-0"


async def test_record_of_a_stopped_instance_is_finished_and_the_instance_started(
    rack: Rack, make_coordinator: CoordinatorFactory, tmp_path: Path
) -> None:
    (disk,) = await rack.disks("left", 1)
    iid = await rack.instance_id(INSTANCE)
    await rack.stop(INSTANCE)  # as a crashed controller would have left it
    store = FileAttachRecordStore(tmp_path / "records")
    await store.save(
        AttachRecord(iid, INSTANCE, True, Phase.APPLYING, (OpRecord(OpKind.ATTACH, disk.id),))
    )

    await make_coordinator(record=store)  # start() runs the first recovery pass

    assert await rack.run_state(INSTANCE) == "running"
    assert await rack.disk_on(disk.id) == iid
    assert await store.load_all() == []
    assert await rack.cycles(INSTANCE) == (1, 1)


async def test_stale_record_of_a_running_instance_is_dropped_without_a_stop(
    rack: Rack, make_coordinator: CoordinatorFactory
) -> None:
    (disk,) = await rack.disks("stale", 1)
    iid = await rack.instance_id(INSTANCE)
    store = MemoryAttachRecordStore()
    await store.save(
        AttachRecord(iid, INSTANCE, True, Phase.STARTING, (OpRecord(OpKind.ATTACH, disk.id),))
    )

    await make_coordinator(record=store)

    assert await store.load_all() == []
    assert await rack.cycles(INSTANCE) == (0, 0)
    assert await rack.disk_on(disk.id) is None


async def test_record_of_a_deleted_instance_is_dropped(
    make_coordinator: CoordinatorFactory,
) -> None:
    store = MemoryAttachRecordStore()
    gone = "0a5c8a4e-1111-4111-8111-111111111111"
    await store.save(AttachRecord(gone, "gone", True, Phase.STOPPING, ()))

    await make_coordinator(record=store)

    assert await store.load_all() == []


async def test_start_that_keeps_failing_leaves_the_record_for_recovery(
    rack: Rack, make_coordinator: CoordinatorFactory
) -> None:
    store = MemoryAttachRecordStore()
    coord = await make_coordinator(record=store, op_timeout=2.0)
    (disk,) = await rack.disks("nocap", 1)
    iid = await rack.instance_id(INSTANCE)
    await rack.fail_starts(INSTANCE, 1000)

    with pytest.raises(errors.Unavailable):
        await coord.attach(disk.id, INSTANCE, deadline=soon())

    assert await rack.run_state(INSTANCE) == "stopped"
    (left,) = await store.load_all()
    assert left.instance_id == iid and left.was_running and left.phase is Phase.STARTING

    # The disk is attached; a retry says so, without another stop.
    again = await coord.attach(disk.id, INSTANCE, deadline=soon())
    assert again.already_attached

    # Capacity returns; the next recovery pass starts the instance and clears the record.
    await rack.fail_starts(INSTANCE, 0)
    await coord.recover()
    assert await rack.run_state(INSTANCE) == "running"
    assert await store.load_all() == []
    assert await rack.cycles(INSTANCE) == (1, 1)


async def test_attach_after_failed_start_restarts_the_instance(
    rack: Rack, make_coordinator: CoordinatorFactory
) -> None:
    """A new cycle on an instance we still owe a start (record left) starts it, although the
    instance is stopped when the cycle begins."""
    store = MemoryAttachRecordStore()
    coord = await make_coordinator(record=store, op_timeout=2.0)
    first, second = await rack.disks("owed", 2)
    await rack.fail_starts(INSTANCE, 1000)
    with pytest.raises(errors.Unavailable):
        await coord.attach(first.id, INSTANCE, deadline=soon())
    await rack.fail_starts(INSTANCE, 0)

    await coord.attach(second.id, INSTANCE, deadline=soon())

    assert await rack.run_state(INSTANCE) == "running"
    assert await store.load_all() == []
    assert await rack.cycles(INSTANCE) == (1, 1)


async def test_recovery_retires_idle_workers_and_keeps_those_with_a_record(
    rack: Rack, make_coordinator: CoordinatorFactory
) -> None:
    one, two = await rack.disks("reap", 2)
    coord = await make_coordinator()
    iid = await rack.instance_id(INSTANCE)
    await coord.attach(one.id, INSTANCE, deadline=soon())
    assert coord.workers() == 1

    await coord.recover()
    assert coord.workers() == 0  # idle, no record: retired

    # The instance's next operation gets a new worker, and it works as the first one did.
    await coord.attach(two.id, INSTANCE, deadline=soon())
    assert await rack.disk_on(two.id) == iid
    assert await rack.cycles(INSTANCE) == (2, 2)


async def test_recovery_keeps_a_worker_whose_instance_has_a_record(
    rack: Rack, make_coordinator: CoordinatorFactory
) -> None:
    store = MemoryAttachRecordStore()
    coord = await make_coordinator(record=store, op_timeout=1.0)
    (disk,) = await rack.disks("kept", 1)
    iid = await rack.instance_id(INSTANCE)
    await rack.fail_starts(INSTANCE, 1000)  # the cycle cannot start the instance again
    with pytest.raises(errors.Unavailable):
        await coord.attach(disk.id, INSTANCE, deadline=soon())

    await coord.recover()  # the start still fails: the record and its worker stay
    assert coord.workers() == 1
    assert [r.instance_id for r in await store.load_all()] == [iid]
