"""Powering an instance off and on again, patiently.

Stop is a hard power-off that Oxide performs asynchronously (running -> stopping -> stopped);
start is asynchronous too (starting -> running) and may be refused with 507 when no sled has
room for the instance right now. A refused start is the dangerous case: we powered the instance
off, so we owe it a start; we back off and try again until the cycle's deadline, and if that
passes the durable record stays behind so periodic recovery keeps trying.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from oxide_csi.oxide import OxideClient, api_errors
from oxide_csi.oxide.models import Instance

log = structlog.get_logger(__name__)

#: States with a VMM that a stop powers off; the instance counts as "was running".
RUNNING_STATES = frozenset({"starting", "running", "rebooting", "migrating"})
#: States in which Oxide accepts attach and detach.
ATTACHABLE_STATES = frozenset({"stopped", "creating"})


#: Maps a cycle's deadline to the one an Oxide change may use: the fence's word (fence.py).
ChangeDeadline = Callable[[float], float]


def unfenced(deadline: float) -> float:
    return deadline


@dataclass(frozen=True)
class StartPolicy:
    """Backoff between starts refused with 507 (or 409 while a stop is still finishing)."""

    initial: float = 1.0
    maximum: float = 30.0


async def stop_and_wait(
    client: OxideClient,
    instance_id: str,
    *,
    deadline: float,
    fence: ChangeDeadline = unfenced,
) -> Instance:
    """Power the instance off and wait until Oxide reports it ``stopped``.

    A ``failed`` instance has no VMM: Oxide marks it stopped at once (and with that cancels
    its own automatic restart of it -- see :func:`owes_start_when_stopping`).
    """
    await client.stop_instance(instance_id, deadline=fence(deadline))
    return await wait_stopped(client, instance_id, deadline=deadline, fence=fence)


async def wait_stopped(
    client: OxideClient,
    instance_id: str,
    *,
    deadline: float,
    fence: ChangeDeadline = unfenced,
) -> Instance:
    """Wait for ``stopped``. An instance whose VMM dies on the way down ends ``failed``, and
    Oxide does not restart it (it was meant to stop); one more stop makes it ``stopped``."""
    found = await client.wait_instance(instance_id, {"stopped", "failed"}, deadline=deadline)
    if found.run_state == "failed":
        await client.stop_instance(instance_id, deadline=fence(deadline))
        found = await client.wait_instance(instance_id, {"stopped"}, deadline=deadline)
    return found


def owes_start_when_stopping(instance: Instance) -> bool:
    """Whether stopping ``instance`` makes the cycle owe it a start.

    A running instance: always, we power it off. A ``failed`` one: when Oxide would have
    restarted it by itself (its policy allows it), since our stop cancels that restart; a
    failed instance whose policy is ``never`` stays down after the cycle, as without us.
    """
    if instance.run_state == "failed":
        return instance.restarts_by_itself()
    return instance.run_state in RUNNING_STATES


async def start_and_wait(
    client: OxideClient,
    instance_id: str,
    *,
    deadline: float,
    policy: StartPolicy,
    fence: ChangeDeadline = unfenced,
) -> Instance:
    """Start the instance, retrying 507 and 409 with backoff, and wait until ``running``.

    Raises the last Oxide error when the deadline leaves no room for another attempt.
    """
    delay = policy.initial
    attempt = 0
    while True:
        attempt += 1
        try:
            await client.start_instance(instance_id, deadline=fence(deadline))
            break
        except (api_errors.OxideInsufficientCapacity, api_errors.OxideConflict) as exc:
            if time.monotonic() + delay >= deadline:
                raise
            log.warning(
                "instance start refused, will retry",
                instance=instance_id,
                attempt=attempt,
                retry_in=round(delay, 3),
                error=str(exc),
            )
            await asyncio.sleep(delay)
            delay = min(policy.maximum, delay * 2)
    return await client.wait_instance(instance_id, {"running"}, deadline=deadline)
