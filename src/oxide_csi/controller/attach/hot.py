"""Hot attach: attach and detach on a running instance first, where the rack allows it.

Why: on Oxide every attach and detach costs the node a power cycle. Oxide has prototyped
hot-plug (attach accepted while the instance runs) but not released it, and its API is not
known; we assume the released endpoints will simply accept a running instance. With
``--hot-attach`` (off by default) the instance's worker therefore offers each queued operation
to the running instance before it would stop it:

* accepted: the operation is done; nothing is stopped. Its caller is answered at once;
* refused -- recognised by HTTP status and error code only (400 ``InvalidRequest``, what
  Nexus answers for "instance is not fully stopped"; never by message text, which is not an
  API) -- or failed in any other way: the operation stays queued and the worker's normal cycle
  does it (stop, attach, start), exactly as without this module. A failure that is not a
  refusal is logged louder, since a cycle may meet it again and then reports it.

A device that never appears. The controller cannot see inside the guest, so it cannot know
whether an accepted hot attach showed its device. What it does know: when the attach was
accepted and in which run of the instance (Oxide's ``time_run_state_updated``). The node's
NodeStage waits for the device and fails while it is missing; the CO then asks again (a
repeated ControllerPublishVolume for a disk already attached to that instance). Such a
re-publish arriving ``timeout`` seconds or more after an accepted hot attach, in the same run
of the instance, is taken as "the device did not appear": the disk is detached and attached
again inside a normal power cycle (the ``repair`` operation), after which the guest boots with
it. A re-publish before the timeout, or after the instance restarted (the boot showed the
disk), answers "attached" as usual. What this cannot do on its own: make the CO ask again --
kubelet retries NodeStage, not ControllerPublish; the external-attacher re-publishes after it
sees the attachment missing (its ListVolumes reconciliation, or a new VolumeAttachment). A
node that reports missing devices through the Kubernetes API would make this direct; until
then the memory of accepted hot attaches is per controller process (a restarted controller
treats every attached disk as seen).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import structlog

from oxide_csi import errors
from oxide_csi.controller.attach.ops import PendingOp
from oxide_csi.controller.attach.power import ChangeDeadline, unfenced
from oxide_csi.controller.attach.records import OpKind
from oxide_csi.oxide import Instance, OxideClient, api_errors

log = structlog.get_logger(__name__)

#: (HTTP status, Oxide error code) of a rack that will not hot-plug this instance right now.
REFUSALS = frozenset({(400, "InvalidRequest")})


def is_refusal(exc: api_errors.OxideError) -> bool:
    """Whether ``exc`` is the rack saying "not while it runs" (status and code, not text)."""
    return (exc.status, exc.error_code) in REFUSALS


@dataclass(frozen=True)
class _Accepted:
    at: float
    #: The run of the instance the device was hot-plugged into.
    run: datetime | None


class HotAttach:
    """Offers operations to running instances and remembers accepted hot attaches."""

    def __init__(
        self,
        client: OxideClient,
        *,
        timeout: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._timeout = timeout
        self._clock = clock
        self._accepted: dict[tuple[str, str], _Accepted] = {}

    async def apply_running(
        self,
        inst: Instance,
        queue: list[PendingOp],
        deadline: float,
        *,
        fence: ChangeDeadline = unfenced,
    ) -> list[PendingOp]:
        """Try every live operation of ``queue`` on the running ``inst``; the ones left.

        ``queue`` is the worker's live list: operations queued while we are busy are tried
        too, so a burst of publishes is all hot or all in one cycle, never one cycle each.
        Repairs are left alone: they need the cycle. ``fence`` gives each change its deadline
        (the instance's Lease, see ``fence.py``).
        """
        tried: set[int] = set()
        while True:
            fresh = [op for op in queue if not op.done and not op.repair and id(op) not in tried]
            if not fresh:
                for op in queue:  # refused while running: never a cycle of their own
                    if op.hot_only:
                        op.fail(errors.Unavailable("hot detach refused; waits for a cycle"))
                return [op for op in queue if not op.done]
            for op in fresh:
                tried.add(id(op))
                await self._try(inst, op, deadline, fence)

    def needs_repair(self, inst: Instance, disk_id: str) -> bool:
        """Whether a re-publish of attached ``disk_id`` means its hot-plugged device never
        appeared (see the module's docstring); True consumes the memory of that attach."""
        key = (inst.id, disk_id)
        accepted = self._accepted.get(key)
        if accepted is None:
            return False
        if accepted.run != inst.time_run_state_updated:
            del self._accepted[key]  # the instance has rebooted since: the boot showed it
            return False
        if self._clock() - accepted.at < self._timeout:
            return False
        del self._accepted[key]
        log.warning(
            "hot-attached disk re-published after the device timeout; repairing with a cycle",
            instance=inst.name,
            disk=disk_id,
            timeout=self._timeout,
        )
        return True

    def forget(self, instance_id: str, disk_id: str) -> None:
        """The disk is being detached from the instance: its hot attach is history."""
        self._accepted.pop((instance_id, disk_id), None)

    async def _try(
        self, inst: Instance, op: PendingOp, deadline: float, fence: ChangeDeadline
    ) -> None:
        client = self._client
        try:
            if op.kind is OpKind.ATTACH:
                disk = await client.attach_disk(inst.id, op.disk_id, deadline=fence(deadline))
                if disk.state != "attached":
                    await client.wait_disk(op.disk_id, {"attached"}, deadline=deadline)
            else:
                disk = await client.detach_disk(inst.id, op.disk_id, deadline=fence(deadline))
                if disk.state != "detached":
                    await client.wait_disk(op.disk_id, {"detached"}, deadline=deadline)
        except api_errors.OxideError as exc:
            if is_refusal(exc):
                log.info(
                    f"rack refused hot {op.kind.value}; a power cycle does it",
                    instance=inst.name,
                    disk=op.disk_name,
                )
            else:
                log.warning(
                    f"hot {op.kind.value} failed; a power cycle tries it",
                    instance=inst.name,
                    disk=op.disk_name,
                    error=str(exc),
                )
            return
        if op.kind is OpKind.ATTACH:
            self._accepted[(inst.id, op.disk_id)] = _Accepted(
                self._clock(), inst.time_run_state_updated
            )
        else:
            self.forget(inst.id, op.disk_id)
        log.info(
            f"disk hot-{op.kind.value}ed, no power cycle", instance=inst.name, disk=op.disk_name
        )
        op.succeed()
