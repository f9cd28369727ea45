"""Deferred detach: released disks stay attached until a cycle happens for their instance anyway.

Why: on Oxide every detach costs the node a power cycle, and a pod that restarts or moves pays
it twice (detach, then attach) -- even when it comes back to the node it left. With the
deferred policy ControllerUnpublishVolume only writes the disk into its instance's ledger
(``ledger.py``) and answers OK: nothing is stopped. The disk is really detached

* in the next cycle of that instance, whatever the reason (:meth:`CycleLedger.join` adds every
  released disk to the batch; its slot is reclaimed there);
* when it is published to another instance (the coordinator first cycles the old one, batched
  with whatever else that instance owes);
* when its instance is gone (Oxide detached it; :meth:`ReleasedDisks.settle` drops the entry);
* when the operator asks (``oxide-csi release-instance``).

A publish back to the instance it was released on removes the entry and costs nothing; the
node stages it with its data intact. DeleteVolume of a released disk records the deletion as
owed and answers OK; from then on the volume does not exist for CSI (:class:`LedgerView`), and
the disk is deleted right after the cycle that detaches it.

Every decision is made from the durable ledger, never from memory alone: :meth:`settle`
reconciles a ledger with what Oxide says after every cycle and in every recovery pass, so a
crash at any point ends in the same state.
"""

from __future__ import annotations

import contextlib
import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

import structlog

from oxide_csi import errors
from oxide_csi.controller.attach.ledger import Ledger, LedgerStore, ReleasedDisk
from oxide_csi.controller.attach.ops import PendingOp
from oxide_csi.controller.attach.records import OpKind
from oxide_csi.oxide import Disk, OxideClient, api_errors

log = structlog.get_logger(__name__)

#: Disk states in which the disk still belongs to its instance.
_ON_INSTANCE = frozenset({"attaching", "attached", "detaching"})


class DetachPolicy(enum.StrEnum):
    DEFERRED = "deferred"
    IMMEDIATE = "immediate"


@dataclass(frozen=True)
class LedgerView:
    """What the ledgers mean for CSI: released disks are published nowhere; disks whose
    deletion is owed do not exist."""

    released: frozenset[str] = frozenset()
    owed: frozenset[str] = frozenset()


class Deferred(Protocol):
    """The ledger as volumes see it (the attach coordinator implements it)."""

    async def view(self) -> LedgerView: ...

    async def owe_delete(self, disk: Disk) -> bool: ...


@dataclass(frozen=True)
class LedgerFigures:
    """For the metrics: how much waits, and the age of the oldest owed deletion (seconds)."""

    released: int = 0
    owed: int = 0
    oldest_owed_seconds: float = 0.0


class ReleasedDisks:
    """The rules of the ledger over one store and one Oxide client."""

    def __init__(
        self,
        client: OxideClient,
        store: LedgerStore,
        *,
        policy: DetachPolicy = DetachPolicy.IMMEDIATE,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._store = store
        self.policy = policy
        self._clock = clock
        self._seen: list[Ledger] = []
        #: An owed deletion waiting longer than this (seconds) is told to ``on_overdue`` (a
        #: Warning Event) at every recovery pass, and logged (``--deferred-delete-alert-after``).
        self.alert_after = 86400.0
        self.on_overdue: Callable[[Ledger, ReleasedDisk], None] | None = None

    @property
    def defers(self) -> bool:
        return self.policy is DetachPolicy.DEFERRED

    # ---- CSI calls -----------------------------------------------------------------------

    async def release(self, instance_id: str, instance_name: str, disk: Disk) -> None:
        """ControllerUnpublishVolume under the deferred policy: written durably, nothing else."""
        now = self._clock()

        def add(ledger: Ledger) -> Ledger:
            if ledger.get(disk.id) is not None:
                return ledger
            return ledger.put(ReleasedDisk(disk.id, disk.name, since=now))

        await self._store.update(instance_id, instance_name, add)
        log.info(
            "disk released; stays attached until a cycle", instance=instance_name, disk=disk.name
        )

    async def reclaim(self, instance_id: str, instance_name: str, disk_id: str) -> bool:
        """A publish to the instance the disk is (or was) released on: the entry goes. True when
        there was one. ABORTED while a cycle has taken it into its batch (it is being
        detached: the retry then attaches it again)."""
        now = self._clock()
        found = False

        def take(ledger: Ledger) -> Ledger:
            nonlocal found
            entry = ledger.get(disk_id)
            found = entry is not None
            if entry is None:
                return ledger
            if entry.in_cycle(now):
                raise errors.Aborted(
                    f"disk {entry.disk_name!r} is being detached from instance "
                    f"{instance_name!r} in a cycle; retry when it has finished"
                )
            return ledger.without([disk_id])

        if await self._store.load(instance_id) is None:
            return False  # the common case, without a write
        await self._store.update(instance_id, instance_name, take)
        return found

    async def entries(self, instance_id: str) -> tuple[ReleasedDisk, ...]:
        ledger = await self._store.load(instance_id)
        return ledger.disks if ledger is not None else ()

    async def entry(self, instance_id: str, disk_id: str) -> ReleasedDisk | None:
        ledger = await self._store.load(instance_id)
        return ledger.get(disk_id) if ledger is not None else None

    async def owe_delete(self, disk: Disk) -> bool:
        """DeleteVolume of a disk still attached: owed (True) when it is a released disk."""
        if disk.instance_id is None:
            return False
        now = self._clock()
        owed = False

        def mark(ledger: Ledger) -> Ledger:
            nonlocal owed
            entry = ledger.get(disk.id)
            owed = entry is not None
            if entry is None or entry.owed_delete:
                return ledger
            return ledger.put(replace(entry, delete_since=now))

        if await self._store.load(disk.instance_id) is None:
            return False
        await self._store.update(disk.instance_id, "", mark)
        if owed:
            log.info("deletion of a released disk owed until its detach", disk=disk.name)
        return owed

    async def view(self) -> LedgerView:
        ledgers = await self._store.load_all()
        self._seen = ledgers
        entries = [e for ledger in ledgers for e in ledger.disks]
        return LedgerView(
            released=frozenset(e.disk_id for e in entries),
            owed=frozenset(e.disk_id for e in entries if e.owed_delete),
        )

    # ---- cycles --------------------------------------------------------------------------

    async def take_for_cycle(
        self,
        instance_id: str,
        instance_name: str,
        takeable: Callable[[ReleasedDisk], bool],
        until: float,
    ) -> list[ReleasedDisk]:
        """Mark durably, and return, the entries a cycle takes into its batch."""
        taken: list[ReleasedDisk] = []

        def mark(ledger: Ledger) -> Ledger:
            taken.clear()
            for entry in ledger.disks:
                if takeable(entry):
                    taken.append(entry)
                    ledger = ledger.put(replace(entry, cycle_until=until))
            return ledger

        if await self._store.load(instance_id) is None:
            return []
        await self._store.update(instance_id, instance_name, mark)
        return list(taken)

    async def settle(self, instance_id: str, deadline: float, *, unmark: bool = False) -> None:
        """Reconcile one ledger with Oxide: entries whose disk left the instance (detached by
        a cycle, or by Oxide with the instance gone) go, after their owed deletion; a disk
        already gone is done. ``unmark``: the cycle that marked entries has ended."""
        ledger = await self._store.load(instance_id)
        if ledger is None:
            return
        done: set[str] = set()
        for entry in ledger.disks:
            if await self._finished(ledger, entry, deadline):
                done.add(entry.disk_id)

        def drop(current: Ledger) -> Ledger:
            kept = current.without(done)
            if unmark:
                for entry in kept.disks:
                    if entry.cycle_until:
                        kept = kept.put(replace(entry, cycle_until=0.0))
            return kept

        if done or unmark:
            await self._store.update(instance_id, ledger.instance_name, drop)

    async def settle_all(self, deadline: float) -> None:
        for ledger in await self._store.load_all():
            try:
                await self.settle(ledger.instance_id, deadline)
            except (api_errors.OxideError, errors.CSIError, OSError) as exc:
                log.warning(
                    "cannot reconcile released disks",
                    instance=ledger.instance_name,
                    error=str(exc),
                )
        await self.view()  # refresh the figures
        for ledger, entry in self.overdue(self.alert_after):
            log.warning(
                "a deleted volume's disk still waits for its instance's next cycle; "
                "oxide-csi release-instance does it now",
                instance=ledger.instance_name or ledger.instance_id,
                disk=entry.disk_name,
                waiting_seconds=round(self._clock() - (entry.delete_since or 0.0)),
            )
            if self.on_overdue is not None:
                self.on_overdue(ledger, entry)

    def figures(self) -> LedgerFigures:
        """From the ledgers last read (every recovery pass reads them all)."""
        entries = [e for ledger in self._seen for e in ledger.disks]
        owed = [e.delete_since for e in entries if e.delete_since is not None]
        oldest = max(0.0, self._clock() - min(owed)) if owed else 0.0
        return LedgerFigures(len(entries) - len(owed), len(owed), oldest)

    def overdue(self, after: float) -> list[tuple[Ledger, ReleasedDisk]]:
        """Owed deletions (with their ledger) that have waited longer than ``after`` seconds."""
        now = self._clock()
        return [
            (ledger, e)
            for ledger in self._seen
            for e in ledger.disks
            if e.delete_since is not None and now - e.delete_since > after
        ]

    async def _finished(self, ledger: Ledger, entry: ReleasedDisk, deadline: float) -> bool:
        try:
            disk = await self._client.get_disk(entry.disk_id, deadline=deadline)
        except api_errors.OxideNotFound:
            return True  # gone: nothing left to detach or delete
        if disk.state in _ON_INSTANCE and disk.instance_id == ledger.instance_id:
            return False  # still released on it
        if not entry.owed_delete:
            return True
        if disk.state != "detached":
            return False  # somewhere else now (an operator's doing): wait, the alert tells
        with contextlib.suppress(api_errors.OxideNotFound):
            await self._client.delete_disk(entry.disk_id, deadline=deadline)
        log.info("deleted a released disk after its detach", disk=entry.disk_name)
        return True


class CycleLedger:
    """What an instance's worker asks of the ledger: the released disks its cycle detaches
    (claimed like any operation, so a concurrent call for them waits or is ABORTED), and the
    settling after the cycle (entries go, owed deletions are done)."""

    def __init__(
        self,
        released: ReleasedDisks,
        claim: Callable[[PendingOp], bool],
        *,
        cycle_timeout: float,
    ) -> None:
        self.released = released
        self._claim = claim
        self._cycle_timeout = cycle_timeout

    async def join(self, instance_id: str, instance_name: str) -> list[PendingOp]:
        """Operations detaching every released disk of the instance not claimed otherwise."""
        until = time.time() + self._cycle_timeout
        ops = []
        # This worker holds the instance's fence: a mark found is a dead cycle's, take it too.
        taken = await self.released.take_for_cycle(
            instance_id, instance_name, lambda e: True, until
        )
        for entry in taken:
            op = detach_op(entry, instance_id, instance_name)
            if self._claim(op):
                ops.append(op)
        return ops

    async def after(self, instance_id: str, deadline: float) -> None:
        """After a cycle (ended well or not): settle the ledger; never fails the worker."""
        try:
            await self.released.settle(instance_id, deadline, unmark=True)
        except Exception as exc:  # the next recovery pass settles it
            log.warning("cannot settle released disks", instance=instance_id, error=str(exc))


def detach_op(entry: ReleasedDisk, instance_id: str, instance_name: str) -> PendingOp:
    return PendingOp(
        OpKind.DETACH, entry.disk_id, entry.disk_name, instance_id, instance_name, released=True
    )
