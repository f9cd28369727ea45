"""``AttachCoordinator``: the controller's entry point for ControllerPublish/Unpublish.

Callers ask for one disk on one instance; the coordinator answers what it can at once (not
found, already attached, attached elsewhere, no free slot) without touching the instance, and
hands everything else to the instance's worker, which power-cycles the instance once per batch.

Why operations outlive their callers: a power cycle takes longer than a typical CSI deadline.
The operation keeps running after the caller's deadline passes (the caller gets
DeadlineExceeded); the CO's retry for the same disk and instance finds the operation in the
in-flight table and waits on it again instead of queuing a second power cycle.

Decisions a caller may want to know:

* a disk in a transient state (``attaching``/``detaching``) answers ``Aborted``: it will settle
  by itself, and the retry then gets the real answer (success, or FailedPrecondition when it
  settled attached elsewhere);
* a different operation already in flight for the same disk (detach while attaching, attach to
  another instance) also answers ``Aborted``, as the CSI spec asks for "operation pending";
* the slot check counts every disk listed on the instance (boot disk included) plus queued
  attaches minus queued detaches; a full instance is ``ResourceExhausted`` and is never
  stopped. Nexus enforces the limit too, and its refusal maps to the same error;
* nothing Oxide would refuse after a stop costs one (``preflight.py``), an attach Oxide
  refused anyway is answered from memory on retry (``refusals.py``), the controller's own
  instance is never cycled, and a crash leftover never wins over a newer call
  (``leftovers.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import structlog

from oxide_csi import errors
from oxide_csi.controller.attach.fence import UNFENCED, Fence
from oxide_csi.controller.attach.graceful import PowerOff, hard_power_off
from oxide_csi.controller.attach.hot import HotAttach
from oxide_csi.controller.attach.ledger import LedgerStore
from oxide_csi.controller.attach.leftovers import leftover, leftover_attach_target
from oxide_csi.controller.attach.ops import AttachResult, PendingOp, translate
from oxide_csi.controller.attach.power import ATTACHABLE_STATES, RUNNING_STATES, StartPolicy
from oxide_csi.controller.attach.preflight import Preflight
from oxide_csi.controller.attach.records import AttachRecordStore, OpKind
from oxide_csi.controller.attach.refusals import RefusalCache
from oxide_csi.controller.attach.released import CycleLedger, DetachPolicy, ReleasedDisks
from oxide_csi.controller.attach.released_calls import ReleasedCalls
from oxide_csi.controller.attach.reports import CycleObserver, StopObserver
from oxide_csi.controller.attach.worker import InstanceWorker, WorkerSettings
from oxide_csi.controller.naming import serial_clash
from oxide_csi.controller.slots import SlotLimit
from oxide_csi.oxide import Disk, Instance, OxideClient, api_errors

log = structlog.get_logger(__name__)

#: Disk states from which Oxide attaches (omicron allows ``creating`` too).
_ATTACHABLE_DISK = frozenset({"detached", "creating"})
_TRANSIENT_DISK = frozenset({"attaching", "detaching"})
#: Instance states an attach may be queued for (``stopping`` finishes by itself; a
#: ``failed`` one is stopped first, see ``power.owes_start_when_stopping``).
_ACCEPTING = RUNNING_STATES | ATTACHABLE_STATES | {"stopping", "failed"}


class AttachCoordinator(ReleasedCalls):
    """Attach and detach disks to Oxide instances, batching the power cycles per instance.

    ``max_disks`` is the per-instance disk limit (boot disk included), or a
    :data:`~oxide_csi.controller.slots.SlotLimit` that asks the rack for it.
    ``batch_window`` is how long a worker waits for more work after the first operation.
    ``op_timeout`` bounds one cycle (stop, apply, start); ``recovery_interval`` is how often
    leftover records are retried. ``start_policy`` is the backoff after 507 on start.
    ``on_cycle`` hears about every cycle (the metrics hook), ``on_stopping`` about every stop
    before it happens (the Events hook). ``hot`` (``--hot-attach``) offers operations to
    running instances before any cycle (see ``hot.py``). ``own_instance_id`` is the instance
    the controller runs on, never to be cycled (None: no such guard). ``fence`` says who may
    act on an instance now (``fence.py``); ``power_off`` how a running instance is powered
    off (``graceful.py``: Oxide's hard stop by default).
    """

    def __init__(
        self,
        client: OxideClient,
        *,
        record: AttachRecordStore,
        max_disks: int | SlotLimit = 8,
        batch_window: float = 0.2,
        op_timeout: float = 600.0,
        recovery_interval: float = 30.0,
        start_policy: StartPolicy | None = None,
        on_cycle: CycleObserver | None = None,
        hot: HotAttach | None = None,
        own_instance_id: str | None = None,
        refusals: RefusalCache | None = None,
        on_stopping: StopObserver | None = None,
        fence: Fence = UNFENCED,
        power_off: PowerOff = hard_power_off,
        ledger: LedgerStore | None = None,
        detach_policy: DetachPolicy = DetachPolicy.IMMEDIATE,
    ) -> None:
        self._client = client
        self._store = record
        self._preflight = Preflight(client, own_instance_id=own_instance_id, max_disks=max_disks)
        self._refusals = refusals if refusals is not None else RefusalCache()
        self._recovery_interval = recovery_interval
        #: Released disks (``released.py``); None: no ledger, every detach is immediate.
        self.released = (
            ReleasedDisks(client, ledger, policy=detach_policy) if ledger is not None else None
        )
        self._settings = WorkerSettings(
            client=client,
            store=record,
            batch_window=batch_window,
            op_timeout=op_timeout,
            start_policy=start_policy or StartPolicy(),
            is_claimed=lambda disk_id: disk_id in self._by_disk,
            on_cycle=on_cycle,
            hot=hot,
            refusals=self._refusals,
            on_stopping=on_stopping,
            fence=fence,
            power_off=power_off,
            released=(
                CycleLedger(self.released, self._claim, cycle_timeout=op_timeout)
                if self.released is not None
                else None
            ),
        )
        self._hot = hot
        self._workers: dict[str, InstanceWorker] = {}
        self._by_disk: dict[str, PendingOp] = {}
        self._recovery_task: asyncio.Task[None] | None = None
        self._closed = False

    # ---- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Recover leftover records once (waiting for it), then keep recovering periodically.

        The first pass may take up to ``op_timeout`` when an instance cannot be started
        (507); callers that must not wait can run ``start()`` in a task -- attach and detach
        are safe meanwhile, since every cycle consults the record of its instance.
        """
        await self.recover()
        self._recovery_task = asyncio.create_task(self._periodic(), name="attach-recovery")

    async def close(self) -> None:
        """Stop all work; unfinished operations fail with Unavailable and records stay."""
        self._closed = True
        if self._recovery_task is not None:
            self._recovery_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recovery_task
        workers, self._workers = list(self._workers.values()), {}
        for worker in workers:
            await worker.close()

    async def recover(self) -> None:
        """One recovery pass: a cycle for every instance with a record and an idle worker.

        It also retires the idle workers of instances without a record: a long-lived
        controller on a cluster whose nodes come and go would otherwise keep a worker (and its
        task) for every instance it ever attached to. Nothing awaits between the idleness
        check and the removal, so no operation can be handed to a worker being retired; the
        instance's next operation simply gets a new one.
        """
        try:
            records = await self._store.load_all()
        except OSError as exc:
            log.error("cannot read attach records", error=str(exc))
            return
        with_record = {rec.instance_id for rec in records}
        retired = [w for iid, w in self._workers.items() if iid not in with_record and w.idle]
        for worker in retired:
            del self._workers[worker.instance_id]
        for worker in retired:
            await worker.close()
        kicks = []
        for rec in records:
            worker = self._worker(rec.instance_id, rec.instance_name)
            if worker.idle:
                log.info("recovering attach record", instance=rec.instance_name, phase=rec.phase)
                kicks.append(worker.kick())
        await asyncio.gather(*kicks)
        if self.released is not None:
            await self.released.settle_all(time.monotonic() + self._recovery_interval)

    async def _periodic(self) -> None:
        while True:
            await asyncio.sleep(self._recovery_interval)
            try:
                await self.recover()
            except Exception as exc:  # keep the loop alive; the next pass retries
                log.error("attach recovery pass failed", error=str(exc))

    def in_flight(self) -> int:
        """How many operations are queued or being applied (for metrics and tests)."""
        return len(self._by_disk)

    def workers(self) -> int:
        """How many instance workers exist (for tests: idle ones are retired by recovery)."""
        return len(self._workers)

    # ---- operations ----------------------------------------------------------------------

    async def attach(
        self, disk_id: str, instance: str, *, deadline: float, known: Disk | None = None
    ) -> AttachResult:
        """Attach disk ``disk_id`` (id or name) to ``instance`` (id or name).

        ``known`` is the disk as the caller has just read it, to save reading it again.
        """
        what = f"attach disk {disk_id!r} to instance {instance!r}"
        inst = await self._instance(instance, deadline, what)
        disk = known if known is not None else await self._disk(disk_id, deadline, what)
        disk = await self._move_released(disk, inst, deadline, what)
        joined = self._join(disk, inst, OpKind.ATTACH)
        if joined is not None:
            await self._wait(joined, deadline, what)
            return joined.result()
        if inst.boot_disk_id == disk.id:  # a static volume naming it: never a pod's volume
            raise errors.FailedPrecondition(f"{what}: it is the instance's boot disk")
        if disk.state == "attached" and disk.instance_id == inst.id:
            repair = self._hot is not None and self._hot.needs_repair(inst, disk.id)
            settle = not repair and await leftover(self._store, inst.id, disk.id) is OpKind.DETACH
            if not (repair or settle):
                if self.released is not None:  # a publish back: the release is over
                    await self.released.reclaim(inst.id, inst.name, disk.id)
                return AttachResult(disk.id, disk.name, inst.id, inst.name, already_attached=True)
            self._preflight.not_own(inst, what)
            worker = self._worker(inst.id, inst.name)
            joined = self._submit(worker, OpKind.ATTACH, disk, inst, settle=settle, repair=repair)
            await self._wait(joined, deadline, what)
            return joined.result()
        if disk.state in _TRANSIENT_DISK:
            raise errors.Aborted(f"{what}: the disk is {disk.state}; retry once it settles")
        if disk.state == "attached":
            raise errors.FailedPrecondition(
                f"{what}: the disk is attached to another instance ({disk.instance_id})"
            )
        if disk.state not in _ATTACHABLE_DISK:
            raise errors.FailedPrecondition(f"{what}: the disk is {disk.state}")
        if inst.run_state not in _ACCEPTING:
            raise errors.FailedPrecondition(f"{what}: the instance is {inst.run_state}")
        self._preflight.not_own(inst, what)
        try:
            await self._preflight.same_project(inst, disk, what, deadline)
            present = {
                d.id: d.name
                async for d in self._client.list_instance_disks(inst.id, deadline=deadline)
            }
            max_disks = await self._preflight.slot_limit(deadline)
        except api_errors.OxideError as exc:
            raise translate(exc, what) from exc
        # The listing awaited: a concurrent retry may have queued this very operation.
        joined = self._join(disk, inst, OpKind.ATTACH)
        if joined is None:
            self._check_serial(disk, inst, present)
            self._refusals.check(disk, inst.id, set(present))
            worker = self._worker(inst.id, inst.name)
            reserved = await self._reclaim_slots(worker, inst, present, max_disks)
            self._preflight.free_slot(inst, set(present), reserved, what, max_disks)
            if self.released is not None:  # a stale entry must not detach it after this attach
                await self.released.reclaim(inst.id, inst.name, disk.id)
            joined = self._submit(worker, OpKind.ATTACH, disk, inst)
        await self._wait(joined, deadline, what)
        return joined.result()

    async def detach(
        self, disk_id: str, instance: str, *, deadline: float, known: Disk | None = None
    ) -> None:
        """Detach disk ``disk_id`` from ``instance``; a disk or instance that is gone, or a disk
        not attached to this instance, counts as detached. ``known``: as for :meth:`attach`."""
        what = f"detach disk {disk_id!r} from instance {instance!r}"
        try:
            inst = await self._instance(instance, deadline, what)
            disk = known if known is not None else await self._disk(disk_id, deadline, what)
        except errors.NotFound:
            return
        joined = self._join(disk, inst, OpKind.DETACH)
        if joined is None:
            settle = disk.instance_id != inst.id
            if settle and await leftover(self._store, inst.id, disk.id) is not OpKind.ATTACH:
                return
            if disk.state in _TRANSIENT_DISK and not settle:
                raise errors.Aborted(f"{what}: the disk is {disk.state}; retry once it settles")
            if inst.boot_disk_id == disk.id:
                raise errors.FailedPrecondition(f"{what}: it is the instance's boot disk")
            if self._hot is not None:
                self._hot.forget(inst.id, disk.id)
            if self.released is not None and self.released.defers and not settle:
                await self.released.release(inst.id, inst.name, disk)  # no cycle now
                return
            self._preflight.not_own(inst, what)
            worker = self._worker(inst.id, inst.name)
            joined = self._submit(worker, OpKind.DETACH, disk, inst, settle=settle)
        await self._wait(joined, deadline, what)

    async def pending_attach(self, disk_id: str) -> str | None:
        """The instance a crash leftover would still attach ``disk_id`` to, or None."""
        return await leftover_attach_target(self._store, disk_id)

    # ---- helpers -------------------------------------------------------------------------

    def _worker(self, instance_id: str, instance_name: str) -> InstanceWorker:
        if self._closed:
            raise errors.Unavailable("the attach coordinator is shut down")
        worker = self._workers.get(instance_id)
        if worker is None:
            worker = InstanceWorker(instance_id, instance_name, self._settings)
            self._workers[instance_id] = worker
        return worker

    def _check_serial(self, disk: Disk, inst: Instance, present: dict[str, str]) -> None:
        """Refuse, before anything is stopped, a disk the guest could not tell from another."""
        queued = [
            op.disk_name
            for op in self._by_disk.values()
            if op.instance_id == inst.id and op.kind is OpKind.ATTACH
        ]
        clash = serial_clash(disk.name, [*present.values(), *queued])
        if clash is not None:
            raise errors.FailedPrecondition(
                f"disk {disk.name!r} would show the same NVMe serial (the first 20 bytes of the "
                f"name) as disk {clash!r} on instance {inst.name!r}; rename one of them"
            )

    def _join(self, disk: Disk, inst: Instance, kind: OpKind) -> PendingOp | None:
        """The in-flight operation to wait on, None if there is none; Aborted if the disk is
        busy with a different one."""
        op = self._by_disk.get(disk.id)
        if op is None:
            return None
        if op.kind is kind and op.instance_id == inst.id:
            return op
        raise errors.Aborted(
            f"disk {disk.name!r} has a {op.kind.value} on instance {op.instance_name!r} "
            "in progress; retry when it has finished"
        )

    def _submit(
        self,
        worker: InstanceWorker,
        kind: OpKind,
        disk: Disk,
        inst: Instance,
        *,
        settle: bool = False,
        repair: bool = False,
    ) -> PendingOp:
        op = PendingOp(kind, disk.id, disk.name, inst.id, inst.name, settle=settle, repair=repair)
        self._by_disk.pop(disk.id, None)  # the caller checked: nothing else is in flight
        self._claim(op)
        worker.submit(op)
        return op

    async def _wait(self, op: PendingOp, deadline: float, what: str) -> None:
        """Wait for ``op`` until ``deadline``; the operation itself is never cancelled."""
        left = deadline - time.monotonic()
        if left <= 0 and not op.done:
            raise errors.DeadlineExceeded(f"{what}: still in progress; retry to keep waiting")
        try:
            await asyncio.wait_for(asyncio.shield(op.future), timeout=max(left, 0))
        except TimeoutError:
            raise errors.DeadlineExceeded(
                f"{what}: still in progress; retry to keep waiting"
            ) from None

    async def _instance(self, instance: str, deadline: float, what: str) -> Instance:
        try:
            return await self._client.get_instance(instance, deadline=deadline)
        except api_errors.OxideNotFound:
            raise errors.NotFound(f"{what}: instance {instance!r} does not exist") from None
        except api_errors.OxideError as exc:
            raise translate(exc, what) from exc

    async def _disk(self, disk_id: str, deadline: float, what: str) -> Disk:
        try:
            return await self._client.get_disk(disk_id, deadline=deadline)
        except api_errors.OxideNotFound:
            raise errors.NotFound(f"{what}: disk {disk_id!r} does not exist") from None
        except api_errors.OxideError as exc:
            raise translate(exc, what) from exc
