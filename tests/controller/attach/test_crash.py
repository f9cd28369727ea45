"""Crash safety: a controller SIGKILLed mid-cycle, then a new one on the same record directory.

The dying controller is a real separate process (``crash_child.py``) killed by a failpoint, so
nothing in it gets to clean up; the simulator lives in the test process and keeps the state.
Whatever point it died at, the new coordinator's ``start()`` must leave the instance running
with no record left, and the attach must then succeed -- without a further power cycle when
the crashed cycle had already got as far as stopping the instance.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from oxide_csi import failpoints
from oxide_csi.controller.attach import FileAttachRecordStore
from tests.controller.attach.conftest import TOKEN, CoordinatorFactory, Rack, soon

INSTANCE = "instance-0"
CHILD = Path(__file__).with_name("crash_child.py")


async def run_child(
    rack: Rack, disk_id: str, record_dir: Path, failpoint: str, **extra: str
) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OXIDE_", "CRASH_"))}
    env.update(extra)
    env.update(
        {
            failpoints.ENV: failpoint,
            "CRASH_OXIDE_URL": rack.sim.url,
            "CRASH_OXIDE_TOKEN": TOKEN,
            "CRASH_RECORD_DIR": str(record_dir),
            "CRASH_DISK": disk_id,
            "CRASH_INSTANCE": INSTANCE,
        }
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


@pytest.mark.parametrize(
    "failpoint",
    [
        failpoints.ATTACH_AFTER_RECORD,
        failpoints.ATTACH_AFTER_STOP,
        failpoints.ATTACH_AFTER_APPLY_ONE,
        failpoints.ATTACH_BEFORE_START,
    ],
)
async def test_new_coordinator_recovers_after_a_crash(
    rack: Rack, make_coordinator: CoordinatorFactory, tmp_path: Path, failpoint: str
) -> None:
    (disk,) = await rack.disks("crash", 1)
    record_dir = tmp_path / "records"

    code, output = await run_child(rack, disk.id, record_dir, failpoint)

    assert code == -signal.SIGKILL, output
    assert f"failpoint {failpoint} hit" in output
    store = FileAttachRecordStore(record_dir)
    (left,) = await store.load_all()
    assert left.was_running
    stopped = failpoint != failpoints.ATTACH_AFTER_RECORD
    assert await rack.cycles(INSTANCE) == (1 if stopped else 0, 0)

    coord = await make_coordinator(record=store)  # start() runs recovery

    assert await rack.run_state(INSTANCE) == "running"
    assert await store.load_all() == []
    result = await coord.attach(disk.id, INSTANCE, deadline=soon())
    assert result.disk_id == disk.id
    # Stopped by the dead controller: recovery finished its attach while the instance was off.
    # Not stopped yet: nothing happened, and the fresh attach does the one cycle.
    assert result.already_attached is stopped
    assert await rack.cycles(INSTANCE) == (1, 1)
    assert await rack.disk_on(disk.id) == await rack.instance_id(INSTANCE)
