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
from dataclasses import dataclass

import structlog

from oxide_csi import errors
from oxide_csi.controller.attach.ops import PendingOp, translate
from oxide_csi.controller.attach.power import (
    ATTACHABLE_STATES,
    RUNNING_STATES,
    StartPolicy,
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
class CycleReport:
    """What one cycle did, for metrics. ``batch_size`` counts the callers' operations the cycle
    took on; ``stopped``/``started`` say whether it powered the instance off or on;
    ``stopped_seconds`` is how long the instance was off on our account (from our stop request
    until it ran again), known once a start succeeds after a stop this process made."""

    instance_id: str
    batch_size: int
    stopped: bool
    started: bool
    stopped_seconds: float | None
    ok: bool


#: Called after every cycle that did something; must be quick and must not raise.
CycleObserver = Callable[[CycleReport], None]


@dataclass
class _CycleMeter:
    batch_size: int = 0
    stopped: bool = False
    started: bool = False
    stopped_seconds: float | None = None


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


class InstanceWorker:
    """Serializes all attach/detach work for one instance (by id) in one asyncio task."""

    def __init__(self, instance_id: str, instance_name: str, settings: WorkerSettings) -> None:
        self.instance_id = instance_id
        self.instance_name = instance_name
        self._s = settings
        self._queue: list[PendingOp] = []  # the open batch (or the next one while applying)
        self._taken: list[PendingOp] = []  # the closed batch being applied
        self._kicks: list[asyncio.Future[None]] = []
        self._wake = asyncio.Event()
        self._in_cycle = False
        self._meter = _CycleMeter()
        #: When our stop request went out; kept across failed cycles until a start succeeds.
        self._off_since: float | None = None
        self._opened_at = 0.0
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

    async def close(self) -> None:
        """Cancel the worker; its unfinished operations fail with Unavailable. A record left
        by an interrupted cycle stays for the next process's recovery."""
        pending = [*self._taken, *self._queue]  # the cancelled cycle forgets its batch
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
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
            self._wake.clear()
            kicks, self._kicks = self._kicks, []
            self._in_cycle = True
            self._meter = _CycleMeter()
            ok = False
            try:
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
                self._report(ok)
                self._taken = []
                self._in_cycle = False
                for kick in kicks:
                    if not kick.done():
                        kick.set_result(None)
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
        self._taken = [op for op in self._queue if not op.done]
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
        try:
            inst = await client.get_instance(self.instance_id, deadline=deadline)
        except api_errors.OxideNotFound:
            self._instance_gone()
            await store.delete(self.instance_id)
            return
        state = inst.run_state
        if state in RUNNING_STATES:
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
            self._off_since = time.monotonic()
            self._meter.stopped = True
            await stop_and_wait(client, self.instance_id, deadline=deadline)
            failpoint(ATTACH_AFTER_STOP)
            owe_start = True
        elif state == "stopping":
            await wait_stopped(client, self.instance_id, deadline=deadline)
        elif state not in ATTACHABLE_STATES and state != "failed":
            raise errors.FailedPrecondition(
                f"instance {self.instance_name!r} is {state}; disks can be attached or "
                "detached only while it is running, stopped or failed"
            )
        await self._hold_batch_open()
        batch = self._close_batch()
        if owe_start:
            record = self._record(Phase.APPLYING, leftovers, batch)
            await store.save(record)
        await self._apply_leftovers(leftovers, state == "failed", deadline)
        for op in batch:
            await self._apply(op, state == "failed", deadline)
            failpoint(ATTACH_AFTER_APPLY_ONE)
        if owe_start:
            await store.save(self._record(Phase.STARTING, leftovers, batch))
            failpoint(ATTACH_BEFORE_START)
            await self._restart(batch, deadline)
        if record is not None:
            await store.delete(self.instance_id)
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
            ops=tuple(dict.fromkeys((*leftovers, *current))),
        )

    def _instance_gone(self) -> None:
        batch = self._close_batch()
        for op in batch:
            if op.kind is OpKind.DETACH:
                op.succeed()  # nothing left to detach from
            else:
                op.fail(errors.NotFound(f"instance {self.instance_name!r} no longer exists"))

    async def _change(self, kind: OpKind, disk_id: str, deadline: float) -> None:
        """Attach or detach, and wait out ``attaching``/``detaching``: the instance must not
        boot before the disk has settled, or the guest may come up without it."""
        client = self._s.client
        if kind is OpKind.ATTACH:
            disk = await client.attach_disk(self.instance_id, disk_id, deadline=deadline)
            if disk.state != "attached":
                await client.wait_disk(disk_id, {"attached"}, deadline=deadline)
        else:
            disk = await client.detach_disk(self.instance_id, disk_id, deadline=deadline)
            if disk.state != "detached":
                await client.wait_disk(disk_id, {"detached"}, deadline=deadline)

    async def _apply(self, op: PendingOp, failed_instance: bool, deadline: float) -> None:
        what = f"{op.kind.value} disk {op.disk_name!r} on instance {self.instance_name!r}"
        if failed_instance and op.kind is OpKind.ATTACH:
            op.fail(errors.FailedPrecondition(f"{what}: the instance has failed"))
            return
        try:
            await self._change(op.kind, op.disk_id, deadline)
        except api_errors.OxideNotFound as exc:
            if op.kind is OpKind.DETACH:
                return  # the disk is gone: as detached as it gets
            op.fail(translate(exc, what))
        except (api_errors.OxideError, errors.CSIError) as exc:
            log.warning(
                "disk operation failed", op=op.kind.value, disk=op.disk_name, error=str(exc)
            )
            op.fail(translate(exc, what))

    async def _apply_leftovers(
        self, leftovers: tuple[OpRecord, ...], failed_instance: bool, deadline: float
    ) -> None:
        """Finish what a crashed cycle was doing, except where a caller now wants otherwise.

        We finish rather than roll back: the CO asked for these, will ask again, and then
        finds them done without another power cycle.
        """
        for op in leftovers:
            if self._s.is_claimed(op.disk_id):
                continue
            if failed_instance and op.kind is OpKind.ATTACH:
                continue
            try:
                await self._change(op.kind, op.disk_id, deadline)
            except api_errors.OxideError as exc:
                log.warning(
                    "leftover disk operation failed; dropped",
                    op=op.kind.value,
                    disk=op.disk_id,
                    instance=self.instance_name,
                    error=str(exc),
                )

    async def _restart(self, batch: list[PendingOp], deadline: float) -> None:
        log.info("starting instance again", instance=self.instance_name)
        try:
            await start_and_wait(
                self._s.client, self.instance_id, deadline=deadline, policy=self._s.start_policy
            )
            self._meter.started = True
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
