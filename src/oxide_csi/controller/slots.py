"""How many disks an instance may hold: the rack's limit, lowered by the operator's flag.

Why asked of the rack: releases up to v17 allow 8 disks per instance and v18 on 12 (boot disk
counted both times); the client learns which generation it talks to from the rack itself
(:mod:`oxide_csi.oxide.generation`). ``--max-disks-per-instance`` can only lower that limit --
a number above what the rack allows would let the coordinator stop an instance for an attach
Nexus then refuses.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from oxide_csi.oxide import OxideClient, api_errors

log = structlog.get_logger(__name__)

#: Seconds between probes while the rack cannot be reached at start-up, at most.
_RETRY_MAX = 60.0

#: ``await limit(deadline)``: the disks an instance may hold, boot disk counted.
SlotLimit = Callable[[float], Awaitable[int]]


def fixed_slot_limit(count: int) -> SlotLimit:
    """A limit that does not ask the rack (tests, and coordinators given a number)."""
    if count < 1:
        raise ValueError("max_disks must be at least 1")

    async def limit(deadline: float) -> int:
        return count

    return limit


def rack_slot_limit(client: OxideClient, ceiling: int | None) -> SlotLimit:
    """The rack generation's limit, or ``ceiling`` when the operator set a lower one."""

    async def limit(deadline: float) -> int:
        rack = (await client.generation(deadline=deadline)).max_disks
        return rack if ceiling is None else min(ceiling, rack)

    return limit


async def announce_generation(client: OxideClient, *, first_pause: float = 1.0) -> None:
    """Find out the rack's generation at start-up and log it once.

    Runs in the background: a rack that cannot be reached yet must not hold up the server
    (the readiness probe reports that); this keeps asking, with growing pauses, until it
    knows. Whatever asks first (this, or the first CreateVolume or attach) does the probing;
    the client keeps the answer.
    """
    pause = first_pause
    while True:
        try:
            found = await client.generation()
        except api_errors.OxideError as exc:
            log.warning("cannot find out the Oxide API generation yet", error=str(exc))
            await asyncio.sleep(pause)
            pause = min(pause * 2, _RETRY_MAX)
            continue
        log.info(
            "detected Oxide API generation",
            generation=str(found),
            disk_slots_per_instance=found.max_disks,
            disk_create_shape="disk_backend" if found.disk_backend else "disk_source",
        )
        return
