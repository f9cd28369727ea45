"""The coordinator's calls about released disks (``released.py``), apart from its core.

Kept out of ``coordinator.py`` (which holds the attach/detach rules) because these are the
deferred policy's additions: a publish of a disk released elsewhere cycles the old instance
first, a full instance gets its released disks' slots back, and DeleteVolume and the CSI views
ask the ledger. The coordinator inherits them; the few of its helpers they use are declared
here.
"""

from __future__ import annotations

import asyncio

from oxide_csi import errors
from oxide_csi.controller.attach.ops import PendingOp
from oxide_csi.controller.attach.released import LedgerView, ReleasedDisks, detach_op
from oxide_csi.controller.attach.worker import InstanceWorker
from oxide_csi.oxide import Disk, Instance


class ReleasedCalls:
    """Mixin of :class:`~oxide_csi.controller.attach.coordinator.AttachCoordinator`."""

    #: None: no ledger, every detach is immediate.
    released: ReleasedDisks | None
    _by_disk: dict[str, PendingOp]

    def _worker(self, instance_id: str, instance_name: str) -> InstanceWorker:
        raise NotImplementedError

    async def _instance(self, instance: str, deadline: float, what: str) -> Instance:
        raise NotImplementedError

    async def _disk(self, disk_id: str, deadline: float, what: str) -> Disk:
        raise NotImplementedError

    async def _wait(self, op: PendingOp, deadline: float, what: str) -> None:
        raise NotImplementedError

    async def view(self) -> LedgerView:
        """What the ledgers mean for CSI (published nowhere, or not existing any more)."""
        return await self.released.view() if self.released is not None else LedgerView()

    async def owe_delete(self, disk: Disk) -> bool:
        """DeleteVolume of an attached disk: True when it is released (the deletion is then
        owed, done after its detach); ABORTED while an operation for it is in flight."""
        if self.released is None:
            return False
        if disk.id in self._by_disk:
            raise errors.Aborted(f"disk {disk.name!r} has an operation in flight; retry")
        return await self.released.owe_delete(disk)

    async def release_instance(self, instance: str, *, deadline: float) -> list[str]:
        """Detach every released disk of ``instance`` now, in one cycle (batched with whatever
        else it owes), and do its owed deletions after it: ``oxide-csi release-instance``, for
        a maintenance window. Returns the names of the disks released."""
        what = f"release the disks of instance {instance!r}"
        if self.released is None:
            return []
        inst = await self._instance(instance, deadline, what)
        entries = await self.released.entries(inst.id)
        ops = []
        for entry in entries:
            op = self._by_disk.get(entry.disk_id)
            if op is None:
                op = detach_op(entry, inst.id, inst.name)
                if self._claim(op):
                    self._worker(inst.id, inst.name).submit(op)
            if op.released and op.instance_id == inst.id:
                ops.append(op)
        for op in ops:
            await self._wait(op, deadline, what)
        await self.released.settle(inst.id, deadline)
        return [entry.disk_name for entry in entries]

    async def _move_released(self, disk: Disk, inst: Instance, deadline: float, what: str) -> Disk:
        """A publish of a disk released on another instance: that one is cycled first (through
        its worker, batched with what it owes; a retry waits on the same detach), then the
        disk is read again. Any other disk is returned as it is."""
        op = self._by_disk.get(disk.id)
        elsewhere = disk.instance_id is not None and disk.instance_id != inst.id
        if op is None and elsewhere and disk.state == "attached" and self.released is not None:
            assert disk.instance_id is not None
            entry = await self.released.entry(disk.instance_id, disk.id)
            if entry is None:
                return disk
            old = await self._instance(disk.instance_id, deadline, what)
            op = self._by_disk.get(disk.id)  # the lookups awaited: a retry may have queued it
            if op is None:
                op = detach_op(entry, old.id, old.name)
                self._claim(op)
                self._worker(old.id, old.name).submit(op)
        if op is None or not op.released or op.instance_id == inst.id:
            return disk
        await self._wait(op, deadline, what)
        return await self._disk(disk.id, deadline, what)

    async def _reclaim_slots(
        self, worker: InstanceWorker, inst: Instance, present: dict[str, str], max_disks: int
    ) -> tuple[set[str], set[str]]:
        """The worker's reservations; when the slots are full, the instance's released disks
        are queued for detaching (their slots are free for this cycle)."""
        attaches, detaches = worker.reserved()
        if self.released is None or len((set(present) | attaches) - detaches) < max_disks:
            return attaches, detaches
        for entry in await self.released.entries(inst.id):
            op = detach_op(entry, inst.id, inst.name)
            if entry.disk_id in present and self._claim(op):
                worker.submit(op)
                detaches.add(entry.disk_id)
        return attaches, detaches

    def _claim(self, op: PendingOp) -> bool:
        """Make ``op`` the disk's operation in flight; False if the disk has one already."""
        if op.disk_id in self._by_disk:
            return False
        self._by_disk[op.disk_id] = op

        def forget(_: asyncio.Future[None]) -> None:
            if self._by_disk.get(op.disk_id) is op:
                del self._by_disk[op.disk_id]

        op.future.add_done_callback(forget)
        return True
