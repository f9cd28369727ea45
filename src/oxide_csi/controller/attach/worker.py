"""One instance's attach/detach worker: gather a batch, power-cycle once, apply all, restart.

Why batch: every attach or detach costs the node a hard power-off and a boot. When a
StatefulSet with seven volumes lands on a node, seven separate cycles would take the node down
seven times; one cycle takes it down once. So the worker stops the instance as soon as the first
operation arrives and keeps the batch open while the instance is stopping (the slowest part)
and at least ``batch_window`` after that first operation, whichever is longer; then it closes
the batch, applies every operation and starts the instance again. Overlapping the window with
the stop means batching costs a lone attach nothing when a stop takes longer than the window.
Work that arrives after the batch closed waits for the next cycle, so a cycle's set of
operations is fixed while the instance is off and the durable record names exactly what it is
doing.

Each operation has its own outcome: a disk deleted meanwhile fails its own caller only. Failures
resolve at once; successes resolve after the instance is running again, because "attached" is
only useful to the CO once the node can see the disk.

The cycle reads the instance's durable record first, so a cycle after a crash (or after a start
that kept failing) knows that the instance was powered off by us and owes it a start. Recovery
is therefore nothing but a cycle without new operations.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from oxide_csi import errors
from oxide_csi.controller.attach.apply import DiskChanges
from oxide_csi.controller.attach.budget import CycleBudget, wait_turn
from oxide_csi.controller.attach.fence import ALWAYS_HELD, UNFENCED, Fence, Hold, drop_settled
from oxide_csi.controller.attach.graceful import PowerOff, hard_power_off
from oxide_csi.controller.attach.hot import HotAttach
from oxide_csi.controller.attach.leftovers import already_done, superseded
from oxide_csi.controller.attach.ops import PendingOp, translate
from oxide_csi.controller.attach.power import (
    ATTACHABLE_STATES,
    RUNNING_STATES,
    StartPolicy,
    owes_start_when_stopping,
    start_and_wait,
    stop_and_wait,
    wait_stopped,
)
from oxide_csi.controller.attach.records import (
    AttachRecord,
    AttachRecordStore,
    OpKind,
    OpRecord,
    Phase,
)
from oxide_csi.controller.attach.refusals import RefusalCache
from oxide_csi.controller.attach.released import CycleLedger
from oxide_csi.controller.attach.reports import (
    CycleMeter,
    CycleObserver,
    CycleReport,
    StopObserver,
)
from oxide_csi.failpoints import (
    ATTACH_AFTER_APPLY_ONE,
    ATTACH_AFTER_RECORD,
    ATTACH_AFTER_STOP,
    ATTACH_BEFORE_START,
    failpoint,
)
from oxide_csi.oxide import OxideClient, api_errors

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class WorkerSettings:
    client: OxideClient
    store: AttachRecordStore
    batch_window: float
    op_timeout: float
    start_policy: StartPolicy
    #: Whether a disk has a live operation somewhere; leftover operations from a record are
    #: not replayed over a caller's newer wish for the same disk.
    is_claimed: Callable[[str], bool]
    on_cycle: CycleObserver | None = None
    #: Set with ``--hot-attach``: operations are offered to the running instance first.
    hot: HotAttach | None = None
    #: Attaches Oxide refused after a stop, answered from memory on retry.
    refusals: RefusalCache = field(default_factory=RefusalCache)
    #: Who may act on an instance now (fence.py); the file backend's is always ours.
    fence: Fence = UNFENCED
    on_stopping: StopObserver | None = None
    #: How many instances may be down for the plugin at once (budget.py); default: no limit.
    budget: CycleBudget = field(default_factory=lambda: CycleBudget(None))
    power_off: PowerOff = hard_power_off  # a running instance: hard, or guest first (graceful.py)
    released: CycleLedger | None = None


class InstanceWorker:
    """Serializes all attach/detach work for one instance (by id) in one asyncio task."""

    def __init__(self, instance_id: str, instance_name: str, settings: WorkerSettings) -> None:
        self.instance_id = instance_id
        self.instance_name = instance_name
        self._s = settings
        self._applier = DiskChanges(
            settings.client,
            instance_id,
            instance_name,
            settings.refusals,
            settings.is_claimed,
            fence=lambda deadline: self._hold.change_deadline(deadline),
        )
        self._queue: list[PendingOp] = []  # the open batch (or the next one while applying)
        self._taken: list[PendingOp] = []  # the closed batch being applied
        self._kicks: list[asyncio.Future[None]] = []
        self._wake = asyncio.Event()
        self._in_cycle = False
        #: Set from just before our stop request (or on finding a stopped instance a record
        #: says we stopped) until it runs again: a shutdown must then let the cycle finish.
        self._owes_start = False
        self._closing = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._meter = CycleMeter()
        #: When our stop request went out; kept across failed cycles until a start succeeds.
        self._off_since: float | None = None
        self._opened_at = 0.0
        self._hold: Hold = ALWAYS_HELD  # the fence held for the current cycle
        self._task = asyncio.create_task(self._run(), name=f"attach-worker-{instance_id}")

    # ---- interface for the coordinator ---------------------------------------------------

    @property
    def idle(self) -> bool:
        return not self._in_cycle and not self._queue and not self._kicks

    def submit(self, op: PendingOp) -> None:
        if not self._queue:
            self._opened_at = time.monotonic()  # the batch window runs from the first operation
        self._queue.append(op)
        self._wake.set()

    def kick(self) -> asyncio.Future[None]:
        """Run a cycle even without operations (recovery); resolves when that cycle ended."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._kicks.append(fut)
        self._wake.set()
        return fut

    def reserved(self) -> tuple[set[str], set[str]]:
        """Disk ids with an unfinished attach, and with an unfinished detach, on this instance.

        Applied attaches stay in here until their cycle ends; the slot check takes the union
        with the listed disks, so a disk counted twice is still one slot.
        """
        live = [op for op in (*self._taken, *self._queue) if not op.done]
        attaches = {op.disk_id for op in live if op.kind is OpKind.ATTACH}
        detaches = {op.disk_id for op in live if op.kind is OpKind.DETACH}
        return attaches, detaches

    @property
    def owes_start(self) -> bool:
        """Whether a cycle has this instance off on our account right now."""
        return self._in_cycle and self._owes_start

    async def close(self) -> None:
        """Cancel the worker; its unfinished operations fail with Unavailable. A record left
        by an interrupted cycle stays for the next process's recovery.

        A cycle that has already stopped its instance is not interrupted: it runs on until the
        instance is started again (or the cycle's deadline passes), and only then does the
        worker stop. Cancelled there, the node would stay off until some controller's
        recovery starts it -- with the Deployment's single replica, not before the new pod is
        scheduled, which may need that very node.
        """
        self._closing = True
        if self.owes_start:
            log.warning(
                "shutting down: letting the cycle finish so the instance runs again",
                instance=self.instance_name,
            )
            await self._idle.wait()
        pending = [*self._taken, *self._queue]  # the cancelled cycle forgets its batch
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._s.budget.give_back(self.instance_id)
        gone = errors.Unavailable("the attach coordinator is shutting down; retry")
        for op in (*pending, *self._queue):
            op.fail(gone)
        for kick in self._kicks:
            if not kick.done():
                kick.set_result(None)

    # ---- the loop ------------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            if self._closing:
                return  # no new cycle once shutting down; close() fails what is queued
            self._wake.clear()
            kicks, self._kicks = self._kicks, []
            self._in_cycle = True
            self._idle.clear()
            self._meter = CycleMeter()
            ok = False
            try:
                until = time.monotonic() + self._s.op_timeout
                async with self._s.fence.hold(self.instance_id, deadline=until) as self._hold:
                    await self._cycle()
                ok = True
            except Exception as exc:
                # Everything in this cycle's batch gets the failure; the CO will retry.
                log.warning(
                    "attach cycle failed",
                    instance=self.instance_name,
                    error=str(exc),
                    error_type=type(exc).__name__,
                )
                what = f"attach/detach on instance {self.instance_name!r}"
                failure = translate(exc, what)
                failed = self._taken or self._queue
                self._meter.batch_size = max(self._meter.batch_size, len(failed))
                for op in failed:
                    op.fail(failure)
                if not self._taken:
                    self._queue.clear()
            finally:
                if ok or not self._owes_start:  # else it is still off: recovery starts it
                    self._s.budget.give_back(self.instance_id)
                self._report(ok)
                self._taken = []
                self._in_cycle = False
                self._idle.set()
                for kick in kicks:
                    if not kick.done():
                        kick.set_result(None)
            await self._seal_refusals()
            if self._s.released is not None:
                await self._s.released.after(self.instance_id, time.monotonic() + 60)
            if self._queue or self._kicks:
                self._wake.set()

    def _report(self, ok: bool) -> None:
        meter, observer = self._meter, self._s.on_cycle
        if observer is None or (ok and not (meter.batch_size or meter.stopped or meter.started)):
            return  # no observer, or a recovery kick that found nothing to do
        report = CycleReport(
            instance_id=self.instance_id,
            batch_size=meter.batch_size,
            stopped=meter.stopped,
            started=meter.started,
            stopped_seconds=meter.stopped_seconds,
            ok=ok,
            instance_name=self.instance_name,
            ops=meter.ops,
        )
        try:
            observer(report)
        except Exception:  # a metrics bug must never break attaching
            log.exception("cycle observer failed", instance=self.instance_name)

    async def _hold_batch_open(self) -> None:
        """Let the batch gather until ``batch_window`` after its first operation."""
        if self._queue:
            left = self._opened_at + self._s.batch_window - time.monotonic()
            if left > 0:
                await asyncio.sleep(left)

    def _close_batch(self) -> list[PendingOp]:
        # Detaches first: the slots they free (released disks' among them) take the attaches.
        live = [op for op in self._queue if not op.done]
        self._taken = sorted(live, key=lambda op: op.kind is OpKind.ATTACH)
        self._queue = []
        self._meter.batch_size = len(self._taken)
        return self._taken

    async def _cycle(self) -> None:
        client, store = self._s.client, self._s.store
        deadline = time.monotonic() + self._s.op_timeout
        record = await store.load(self.instance_id)
        if record is None and not self._queue:
            return  # a kick with nothing to recover
        owe_start = record is not None and record.was_running
        leftovers = record.ops if record is not None else ()
        self._owes_start = False
        try:
            inst = await client.get_instance(self.instance_id, deadline=deadline)
        except api_errors.OxideNotFound:
            self._instance_gone()
            await store.delete(self.instance_id)
            return
        state = inst.run_state
        if state in RUNNING_STATES and self._s.fence.shared:
            await drop_settled(client, self.instance_id, self._queue, deadline=deadline)
        if state == "running" and self._s.hot is not None:
            self._queue = await self._s.hot.apply_running(
                inst, self._queue, deadline, fence=self._hold.change_deadline
            )
            if not self._queue and record is None:
                return  # all done while it runs: no power cycle
        if state == "failed" or (state in RUNNING_STATES and self._queue):  # a stop may follow
            inst, deadline = await wait_turn(self._s.budget, client, inst, deadline)
            state = inst.run_state
        if state == "failed":
            # Attaching needs it stopped; the stop cancels Oxide's own restart, which the
            # cycle then owes in its place (recorded first, like any start we owe).
            if owes_start_when_stopping(inst) and record is None:
                record = self._record(Phase.STOPPING, leftovers, self._queue)
                await store.save(record)
            owe_start = owe_start or owes_start_when_stopping(inst)
            fenced = self._hold.change_deadline
            stopped = await stop_and_wait(client, self.instance_id, deadline=deadline, fence=fenced)
            state = stopped.run_state
        if state in RUNNING_STATES:
            leftovers = await self._drop_settled(leftovers, deadline)
            if not self._queue:
                # Running again (we started it before the record was deleted, or someone
                # did): the leftovers would need a power cycle nobody is waiting for.
                log.info("dropping stale attach record", instance=self.instance_name)
                await store.delete(self.instance_id)
                return
            record = self._record(Phase.STOPPING, leftovers, self._queue)
            await store.save(record)
            failpoint(ATTACH_AFTER_RECORD)
            log.info("stopping instance to attach/detach", instance=self.instance_name)
            if self._s.on_stopping is not None:
                self._s.on_stopping(record)
            self._off_since = time.monotonic()
            self._meter.stopped = True
            self._owes_start = True
            fence = self._hold.change_deadline
            await self._s.power_off(client, inst, deadline=deadline, fence=fence)
            failpoint(ATTACH_AFTER_STOP)
            owe_start = True
        elif state == "stopping":
            self._owes_start = owe_start
            fence = self._hold.change_deadline
            await wait_stopped(client, self.instance_id, deadline=deadline, fence=fence)
        elif state not in ATTACHABLE_STATES:
            raise errors.FailedPrecondition(
                f"instance {self.instance_name!r} is {state}; disks can be attached or "
                "detached only while it is running, stopped or failed"
            )
        else:
            self._owes_start = owe_start
        if self._owes_start:  # off on our account, maybe since a previous controller: counted
            await self._s.budget.count(self.instance_id, self.instance_name)
        await self._hold_batch_open()
        if self._s.released is not None:  # the instance is off anyway: detach released disks
            self._queue += await self._s.released.join(self.instance_id, self.instance_name)
        batch = self._close_batch()
        if owe_start:
            record = self._record(Phase.APPLYING, leftovers, batch)
            await store.save(record)
        await self._applier.leftovers(leftovers, deadline)
        for op in batch:  # detaches first (_close_batch): they free the attaches' slots
            await self._applier.apply(op, deadline)
            failpoint(ATTACH_AFTER_APPLY_ONE)
        if owe_start:
            await store.save(self._record(Phase.STARTING, leftovers, batch))
            failpoint(ATTACH_BEFORE_START)
            await self._restart(batch, deadline)
        if record is not None:
            await store.delete(self.instance_id)
        self._meter.ops = tuple(OpRecord(op.kind, op.disk_id) for op in batch if not op.done)
        for op in batch:
            op.succeed()

    # ---- steps ---------------------------------------------------------------------------

    def _record(
        self, phase: Phase, leftovers: tuple[OpRecord, ...], ops: list[PendingOp]
    ) -> AttachRecord:
        current = tuple(OpRecord(op.kind, op.disk_id) for op in ops if not op.done)
        return AttachRecord(
            instance_id=self.instance_id,
            instance_name=self.instance_name,
            was_running=True,
            phase=phase,
            ops=superseded(leftovers, current),
        )

    async def _drop_settled(
        self, leftovers: tuple[OpRecord, ...], deadline: float
    ) -> tuple[OpRecord, ...]:
        """Succeed the settling operations whose disk already is where they want it, before
        anything is stopped; the leftovers they override are dropped with them."""
        settled = [
            op
            for op in self._queue
            if op.settle and await already_done(self._s.client, op, deadline)
        ]
        for op in settled:
            op.succeed()
        self._queue = [op for op in self._queue if not op.done]
        done = {op.disk_id for op in settled}
        return tuple(op for op in leftovers if op.disk_id not in done)

    async def _seal_refusals(self) -> None:
        """Note how disk and instance look after a cycle that met refusals (see refusals.py)."""
        try:
            await self._s.refusals.seal(self._s.client, self.instance_id, time.monotonic() + 30)
        except Exception:  # a failed read only means the next retry may cycle again
            log.exception("cannot seal attach refusals", instance=self.instance_name)

    def _instance_gone(self) -> None:
        batch = self._close_batch()
        for op in batch:
            if op.kind is OpKind.DETACH:
                op.succeed()  # nothing left to detach from
            else:
                op.fail(errors.NotFound(f"instance {self.instance_name!r} no longer exists"))

    async def _restart(self, batch: list[PendingOp], deadline: float) -> None:
        log.info("starting instance again", instance=self.instance_name)
        try:
            await start_and_wait(
                self._s.client,
                self.instance_id,
                deadline=deadline,
                policy=self._s.start_policy,
                fence=self._hold.change_deadline,
            )
            self._meter.started = True
            self._owes_start = False
            if self._off_since is not None:
                self._meter.stopped_seconds = time.monotonic() - self._off_since
                self._off_since = None
        except api_errors.OxideError as exc:
            # The record stays: periodic recovery keeps trying to start the instance.
            failure = errors.Unavailable(
                f"disks changed on instance {self.instance_name!r}, but it could not be "
                f"started again yet ({exc}); recovery keeps trying"
            )
            for op in batch:
                op.fail(failure)
            raise failure from exc
