"""Child process for the crash tests: attach one disk with failpoints armed, and die.

Run by ``test_crash.py`` with ``OXIDE_CSI_FAILPOINTS`` set; the coordinator SIGKILLs this
process at the named point of its cycle. Settings come from the environment (the token too,
so it never shows in a process listing). Exits 0 only if the attach finished, which for an
armed failpoint means the failpoint did not fire -- a test failure.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any

from oxide_csi.controller.attach import AttachCoordinator, FileAttachRecordStore, StartPolicy
from oxide_csi.controller.attach.graceful import GracefulPowerOff
from oxide_csi.oxide import OxideClient, OxideConfig
from oxide_csi.poweroff.files import FileChannel


async def main() -> None:
    cfg = OxideConfig(
        host=os.environ["CRASH_OXIDE_URL"],
        token=os.environ["CRASH_OXIDE_TOKEN"],
        project="default",
        poll_initial=0.01,
        poll_max=0.05,
    )
    async with OxideClient(cfg) as client:
        coord = AttachCoordinator(
            client,
            record=FileAttachRecordStore(os.environ["CRASH_RECORD_DIR"]),
            batch_window=0.05,
            op_timeout=30.0,
            start_policy=StartPolicy(initial=0.02, maximum=0.1),
            **_power_off(),
        )
        await coord.start()
        deadline = time.monotonic() + 30.0
        await coord.attach(
            os.environ["CRASH_DISK"], os.environ["CRASH_INSTANCE"], deadline=deadline
        )
        await coord.close()
    print("attach finished without crashing", flush=True)


def _power_off() -> dict[str, Any]:
    """Graceful power-off through the file channel in ``CRASH_POWER_OFF_DIR``, if set."""
    directory = os.environ.get("CRASH_POWER_OFF_DIR")
    if not directory:
        return {}
    return {"power_off": GracefulPowerOff(FileChannel(Path(directory)), timeout=30.0)}


if __name__ == "__main__":
    asyncio.run(main())
