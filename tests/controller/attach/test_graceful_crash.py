"""A controller SIGKILLed right after its power-off request: the guest still powers off once,
recovery starts the instance, and the request left behind never powers it off again.

The dying controller is a real process (``crash_child.py``); the node plugin's agent runs in
the test process on the same file channel and plays instance-0's guest (``test_graceful``).
"""

from __future__ import annotations

import signal
from pathlib import Path

from oxide_csi import failpoints
from oxide_csi.controller.attach import FileAttachRecordStore
from oxide_csi.poweroff.files import FileChannel
from tests.controller.attach.conftest import CoordinatorFactory, Rack, soon, until
from tests.controller.attach.test_crash import run_child
from tests.controller.attach.test_graceful import INSTANCE, guest, power_offs


async def test_a_request_left_by_a_dead_controller_powers_off_once(
    rack: Rack, make_coordinator: CoordinatorFactory, tmp_path: Path
) -> None:
    (disk,) = await rack.disks("crash-gentle", 1)
    channel = FileChannel(tmp_path / "poweroff", poll=0.01)
    record_dir = tmp_path / "records"
    async with guest(rack, channel, tmp_path):
        code, output = await run_child(
            rack,
            disk.id,
            record_dir,
            failpoints.POWER_OFF_AFTER_REQUEST,
            CRASH_POWER_OFF_DIR=str(channel.directory),
        )
        assert code == -signal.SIGKILL, output
        # the record came first; the guest answers the request of the dead controller
        (record,) = await FileAttachRecordStore(record_dir).load_all()
        assert record.was_running
        await rack.wait_run_state(INSTANCE, {"stopped"})
    assert await power_offs(rack) == (1, 0)
    (left,) = list((channel.directory / "requests").iterdir())

    store = FileAttachRecordStore(record_dir)
    coord = await make_coordinator(record=store)  # recovery: attach and start
    assert await rack.run_state(INSTANCE) == "running"
    assert await store.load_all() == []

    # the host booted again and its node plugin started anew: the request is still there,
    # unexpired, and names a boot that is over
    async with guest(rack, channel, tmp_path) as again:
        await until(lambda: len(again.ignored) == 1, "the leftover to be looked at")
        assert "another boot" in next(iter(again.ignored.values()))
        result = await coord.attach(disk.id, INSTANCE, deadline=soon())
        assert result.already_attached
    assert left.exists()
    assert await power_offs(rack) == (1, 0)
    assert await rack.run_state(INSTANCE) == "running"
