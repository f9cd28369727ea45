"""How the worker powers a running instance off: Oxide's hard stop, or the guest's own shutdown.

The worker calls one :data:`PowerOff` where it used to call ``stop_and_wait``. The default,
:func:`hard_power_off`, is that stop: Oxide pulls the virtual power cord. :class:`GracefulPowerOff`
(``--graceful-power-off``) first asks the instance's own node plugin to shut the host down
through its init, so kubelet's graceful node shutdown ends the pods with their grace periods
and every filesystem is synced and unmounted; Oxide then reports the instance ``stopped``.

Order and fallbacks, each logged and counted (``on_power_off``):

1. Only a ``running`` instance has a guest that can shut down; anything else is stopped hard.
2. The node plugin's heartbeat must be live and belong to the instance's current run (renewed
   after the run began; a heartbeat left by the previous boot is waited for a little while the
   new plugin comes up): otherwise nobody can answer, and the stop is hard at once.
3. The request names the run, the node plugin's boot and start (from that heartbeat), and an
   expiry ``graceful_stop_timeout`` away; the worker wrote the cycle's record before this is
   called, so a controller that dies from here on is finished by recovery. The fence is asked
   before the request goes out, like before any Oxide change.
4. Wait for ``stopped`` until the timeout (never past the cycle's deadline); then the hard stop.
   A request that cannot be written (the channel is down) is a hard stop at once.
5. The request is withdrawn whatever happened, before any hard stop; leftovers of a controller
   that died expire, and ``sweep`` removes them (no node acts on them anyway: see
   ``poweroff.messages``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import structlog

from oxide_csi.controller.attach.power import ChangeDeadline, stop_and_wait, wait_stopped
from oxide_csi.failpoints import POWER_OFF_AFTER_REQUEST, failpoint
from oxide_csi.oxide import OxideClient, api_errors
from oxide_csi.oxide.models import Instance
from oxide_csi.poweroff.messages import ControllerChannel, Heartbeat, PowerOffRequest

log = structlog.get_logger(__name__)

GUEST = "guest"
HARD = "hard"
#: Why a graceful power-off fell back to the hard stop (the metric's ``reason`` label).
NOT_RUNNING = "not-running"
NO_HEARTBEAT = "no-heartbeat"
TIMEOUT = "timeout"
REQUEST_FAILED = "request-failed"
#: How often a heartbeat from before the current run is looked at again.
_FRESH_POLL = 0.2


class PowerOff(Protocol):
    """Power the running instance ``inst`` off; return it once Oxide reports it ``stopped``."""

    def __call__(
        self, client: OxideClient, inst: Instance, *, deadline: float, fence: ChangeDeadline
    ) -> Awaitable[Instance]: ...


#: Told of every power-off: the instance, how (``guest`` or ``hard``) and, for a hard one, why;
#: quick, and never raising (the metrics and the Node's Events).
PowerOffObserver = Callable[[Instance, str, str], None]


async def hard_power_off(
    client: OxideClient, inst: Instance, *, deadline: float, fence: ChangeDeadline
) -> Instance:
    """Oxide's stop: what every cycle did before graceful power-off."""
    return await stop_and_wait(client, inst.id, deadline=deadline, fence=fence)


class GracefulPowerOff:
    """:data:`PowerOff` that asks the guest first, through ``channel``."""

    def __init__(
        self,
        channel: ControllerChannel,
        *,
        timeout: float,
        issuer: str = "",
        on_power_off: PowerOffObserver | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._channel = channel
        self._timeout = timeout
        self._issuer = issuer
        self._observe = on_power_off
        self._clock = clock

    async def __call__(
        self, client: OxideClient, inst: Instance, *, deadline: float, fence: ChangeDeadline
    ) -> Instance:
        if inst.run_state != "running":
            return await self._hard(client, inst, deadline, fence, NOT_RUNNING)
        beat = await self._heartbeat(inst, deadline)
        if beat is None:
            return await self._hard(client, inst, deadline, fence, NO_HEARTBEAT)
        fence(deadline)  # raises FenceLost: ask nobody anything once the instance is not ours
        await self.sweep()
        now = self._clock()
        request = PowerOffRequest(
            instance_id=inst.id,
            run=_run_of(inst),
            boot_id=beat.boot_id,
            node_started=beat.started,
            issued=now,
            expires=now + self._timeout,
            issuer=self._issuer,
        )
        try:
            await self._channel.send(request)
        except Exception as exc:  # the channel is down: nobody will hear, stop it hard
            log.warning("cannot write power-off request", error=repr(exc))
            await self._withdraw(request)
            return await self._hard(client, inst, deadline, fence, REQUEST_FAILED)
        failpoint(POWER_OFF_AFTER_REQUEST)
        log.info(
            "asking the node plugin to power its host off",
            instance=inst.name or inst.id,
            request=request.id,
            timeout=self._timeout,
        )
        stopped = True
        try:
            limit = min(deadline, time.monotonic() + self._timeout)
            await client.wait_instance(inst.id, {"stopped", "failed"}, deadline=limit)
        except api_errors.OxideTimeout:
            stopped = False
        finally:
            await self._withdraw(request)  # before any hard stop: nobody acts on it any more
        if not stopped:
            return await self._hard(client, inst, deadline, fence, TIMEOUT)
        found = await wait_stopped(client, inst.id, deadline=deadline, fence=fence)
        log.info("the guest powered itself off", instance=inst.name or inst.id)
        self._tell(inst, GUEST, "")
        return found

    async def sweep(self) -> int:
        """Remove expired requests (a dead controller's; no node acts on them, but nobody
        should have to wonder); before every request, best effort."""
        try:
            removed = await self._channel.sweep(self._clock())
        except Exception as exc:
            log.warning("cannot sweep power-off requests", error=repr(exc))
            return 0
        if removed:
            log.info("removed expired power-off requests", count=removed)
        return removed

    async def _heartbeat(self, inst: Instance, deadline: float) -> Heartbeat | None:
        """The live heartbeat of the instance's current run, or None.

        A heartbeat renewed before the run began comes from the previous boot: its identity
        would make the node ignore the request. While the run is younger than such a
        heartbeat's lifetime the new node plugin may still be coming up, so it is given that
        long to beat (never past the cycle's deadline).
        """
        began = inst.time_run_state_updated.timestamp() if inst.time_run_state_updated else 0.0
        while True:
            try:
                beat = await self._channel.heartbeat(inst.id)
            except Exception as exc:  # unreadable is as good as absent: nobody to rely on
                log.warning("cannot read the node plugin's heartbeat", error=repr(exc))
                return None
            now = self._clock()
            if beat is None or not beat.live(now):
                return None
            if beat.renewed >= began:
                return beat
            wait_until = began + beat.duration
            if now >= wait_until or time.monotonic() + _FRESH_POLL >= deadline:
                return None
            await asyncio.sleep(_FRESH_POLL)

    async def _hard(
        self, client: OxideClient, inst: Instance, deadline: float, fence: ChangeDeadline, why: str
    ) -> Instance:
        log.info(
            "powering the instance off hard",
            instance=inst.name or inst.id,
            reason=why,
            state=inst.run_state,
            graceful_stop_timeout=self._timeout,
        )
        found = await hard_power_off(client, inst, deadline=deadline, fence=fence)
        self._tell(inst, HARD, why)
        return found

    async def _withdraw(self, request: PowerOffRequest) -> None:
        try:
            await self._channel.withdraw(request)
        except Exception as exc:  # it expires; recovery's sweep removes it
            log.warning("cannot withdraw power-off request", request=request.id, error=repr(exc))

    def _tell(self, inst: Instance, how: str, why: str) -> None:
        if self._observe is not None:
            with contextlib.suppress(Exception):  # a metrics bug must never break a cycle
                self._observe(inst, how, why)


def _run_of(inst: Instance) -> str:
    stamp = inst.time_run_state_updated
    return stamp.isoformat() if stamp is not None else "unknown"
