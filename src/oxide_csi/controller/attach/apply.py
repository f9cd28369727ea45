"""Applying attaches and detaches to a stopped instance, one disk at a time.

Split from the worker (which decides *when*: the cycle) because this is *how*: each change
waits until the disk has settled, a refusal of Oxide is remembered (``refusals.py``), and a
crash leftover is applied only while no caller claims its disk (``leftovers.py``).
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from oxide_csi import errors
from oxide_csi.controller.attach.ops import PendingOp, translate
from oxide_csi.controller.attach.power import ChangeDeadline, unfenced
from oxide_csi.controller.attach.records import OpKind, OpRecord
from oxide_csi.controller.attach.refusals import RefusalCache, is_refusal
from oxide_csi.oxide import OxideClient, api_errors

log = structlog.get_logger(__name__)


class DiskChanges:
    """The disk changes of one instance's worker."""

    def __init__(
        self,
        client: OxideClient,
        instance_id: str,
        instance_name: str,
        refusals: RefusalCache,
        is_claimed: Callable[[str], bool],
        *,
        fence: ChangeDeadline = unfenced,
    ) -> None:
        self._client = client
        #: The deadline each change may use: the worker's hold of the instance (fence.py).
        self._fence = fence
        self.instance_id = instance_id
        self.instance_name = instance_name
        self._refusals = refusals
        self._is_claimed = is_claimed

    async def change(self, kind: OpKind, disk_id: str, deadline: float) -> None:
        """Attach or detach, and wait out ``attaching``/``detaching``: the instance must not
        boot before the disk has settled, or the guest may come up without it."""
        client = self._client
        change = self._fence(deadline)
        if kind is OpKind.ATTACH:
            disk = await client.attach_disk(self.instance_id, disk_id, deadline=change)
            if disk.state != "attached":
                await client.wait_disk(disk_id, {"attached"}, deadline=deadline)
        else:
            disk = await client.detach_disk(self.instance_id, disk_id, deadline=change)
            if disk.state != "detached":
                await client.wait_disk(disk_id, {"detached"}, deadline=deadline)

    async def apply(self, op: PendingOp, deadline: float) -> None:
        what = f"{op.kind.value} disk {op.disk_name!r} on instance {self.instance_name!r}"
        try:
            if op.repair:  # its hot-plugged device never appeared: plug it anew
                await self.change(OpKind.DETACH, op.disk_id, deadline)
            await self.change(op.kind, op.disk_id, deadline)
        except api_errors.OxideNotFound as exc:
            if op.kind is OpKind.DETACH:
                return  # the disk is gone: as detached as it gets
            op.fail(translate(exc, what))
        except (api_errors.OxideError, errors.CSIError) as exc:
            log.warning(
                "disk operation failed", op=op.kind.value, disk=op.disk_name, error=str(exc)
            )
            failure = translate(exc, what)
            if (
                op.kind is OpKind.ATTACH
                and is_refusal(exc)
                and isinstance(failure, errors.CSIError)
            ):
                self._refusals.note(op.disk_id, self.instance_id, failure)
            op.fail(failure)

    async def leftovers(self, leftovers: tuple[OpRecord, ...], deadline: float) -> None:
        """Finish what a crashed cycle was doing, except where a caller now wants otherwise.

        We finish rather than roll back: the CO asked for these, will ask again, and then
        finds them done without another power cycle.
        """
        for op in leftovers:
            if self._is_claimed(op.disk_id):
                continue
            try:
                await self.change(op.kind, op.disk_id, deadline)
            except api_errors.OxideError as exc:
                log.warning(
                    "leftover disk operation failed; dropped",
                    op=op.kind.value,
                    disk=op.disk_id,
                    instance=self.instance_name,
                    error=str(exc),
                )
