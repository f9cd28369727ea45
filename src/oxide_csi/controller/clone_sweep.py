"""Deleting the temporary snapshots of clones that nobody finished.

A clone goes through a snapshot of its source (``volumes.py``), deleted as soon as the new disk
is usable, or by the retry that finds the disk made. When a clone is abandoned instead -- its
CreateVolume failed and the claim was deleted before a retry succeeded -- nothing comes back
for the snapshot, and it keeps holding the source's blocks and the silo's quota. So the
controller sweeps: now and then it deletes every snapshot that is a clone's temporary one --
named so (``clone-<16 hex>``) *and* described so (the marker :func:`clone_description` writes;
a user's snapshot may carry a look-alike name, never our description) -- and is older than
``max_age``. Temporary snapshots of plugin versions that wrote no marker are left alone.

The age is the safety margin: a clone in progress uses its snapshot for seconds to minutes.
Should a very slow one still lose it, its retry takes a new snapshot (the name is derived from
the target), so the worst case is one more snapshot, never a wrong disk. ``time_created`` comes
from the rack's clock; ``max_age`` of an hour dwarfs any skew.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import structlog

from oxide_csi.controller import naming
from oxide_csi.controller.metadata import is_clone_description
from oxide_csi.oxide import OxideClient, api_errors

log = structlog.get_logger(__name__)

#: How old a clone's temporary snapshot must be before a sweep deletes it.
MAX_AGE = timedelta(hours=1)
#: How often the controller sweeps.
INTERVAL = 3600.0
#: The bound of one sweep's API calls.
SWEEP_TIMEOUT = 300.0


async def sweep_clone_snapshots(
    client: OxideClient, *, max_age: timedelta = MAX_AGE, now: datetime | None = None
) -> list[str]:
    """Delete the clone snapshots older than ``max_age``; return their names."""
    deadline = time.monotonic() + SWEEP_TIMEOUT
    cutoff = (now or datetime.now(UTC)) - max_age
    stale = [
        snap.name
        async for snap in client.list_snapshots(deadline=deadline)
        if naming.is_clone_snapshot(snap.name)
        and is_clone_description(snap.description)
        and snap.time_created is not None
        and snap.time_created < cutoff
        and snap.state != "creating"
    ]
    for name in stale:
        with contextlib.suppress(api_errors.OxideNotFound):
            await client.delete_snapshot(name, deadline=deadline)
        log.info("deleted the temporary snapshot of an abandoned clone", snapshot=name)
    return stale


def sweep_periodically(
    client: OxideClient, interval: float = INTERVAL, max_age: timedelta = MAX_AGE
) -> Callable[[], Awaitable[None]]:
    """Sweep now and every ``interval`` seconds in a background task; return its closer.

    A failed sweep (the rack unreachable, say) is logged and tried again next time; nothing
    it raises may end the loop, or the closer would raise it at shutdown.
    """

    async def loop() -> None:
        while True:
            try:
                await sweep_clone_snapshots(client, max_age=max_age)
            except Exception as exc:
                log.warning("clone snapshot sweep failed", error=str(exc))
            await asyncio.sleep(interval)

    task = asyncio.create_task(loop(), name="clone-snapshot-sweep")

    async def close() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return close
