"""Kubernetes Events, written in the background: telling never holds up or fails doing.

A platform team reads what the plugin does to their nodes with ``kubectl describe node`` and
``kubectl describe pvc``. But an Event is a courtesy: a slow or unreachable API server must not
delay a publish, and a refused Event must not fail one. So :meth:`EventRecorder.emit` only
puts the Event on a bounded queue (dropping it, with a log line, when the queue is full) and
one background task writes them. Where the Event is about (a Node, a PVC) may need looking up
(an instance's Node, a disk's PVC); that lookup runs in the background task too.

Events are ``v1`` Events, the kind ``kubectl describe`` lists: a Node's in the ``default``
namespace (as the kubelet writes them), a PVC's in the PVC's namespace. An Event repeated
within :data:`REPEAT_WINDOW` (the CO retrying a refused publish every few minutes) updates the
earlier one's count and time, as Kubernetes' own recorders do, instead of piling up.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from lightkube import ApiError, AsyncClient
from lightkube.models.core_v1 import EventSource, ObjectReference
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Event

from oxide_csi.kube.records import TRANSPORT_ERRORS

log = structlog.get_logger(__name__)

COMPONENT = "oxide-csi-controller"
NORMAL = "Normal"
WARNING = "Warning"
#: Kubernetes caps an Event's note at 1 KiB in events.k8s.io; we stay under it everywhere.
MAX_MESSAGE = 1000
QUEUE_SIZE = 512
#: Seconds within which an identical Event counts up the earlier one.
REPEAT_WINDOW = 600.0
#: How many recent Events are remembered for counting up.
_RECENT = 1024


@dataclass(frozen=True)
class Target:
    """The object an Event is about."""

    kind: str
    name: str
    namespace: str = ""  # "" for cluster-scoped objects (Nodes)

    @classmethod
    def node(cls, name: str) -> Target:
        return cls("Node", name)

    @classmethod
    def pvc(cls, namespace: str, name: str) -> Target:
        return cls("PersistentVolumeClaim", name, namespace)


#: Finds the target in the background; None: nothing to tell it to (the Event is dropped).
Lookup = Callable[[], Awaitable[Target | None]]


@dataclass(frozen=True)
class _Pending:
    about: Target | Lookup
    type: str
    reason: str
    message: str


class EventRecorder:
    """Queue Events with :meth:`emit`; :meth:`start` the writer, :meth:`close` to stop it."""

    def __init__(self, client: AsyncClient, identity: str, *, size: int = QUEUE_SIZE) -> None:
        self._client = client
        self._identity = identity
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(maxsize=size)
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0
        #: (target, type, reason, message) -> the Event last written for it, and when.
        self._recent: dict[tuple[Target, str, str, str], tuple[Event, float]] = {}

    def emit(self, about: Target | Lookup, type_: str, reason: str, message: str) -> None:
        """Queue one Event; never blocks, never raises."""
        try:
            self._queue.put_nowait(_Pending(about, type_, reason, message[:MAX_MESSAGE]))
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning("event queue full; event dropped", reason=reason, message=message)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="kube-events")

    async def close(self, grace: float = 2.0) -> None:
        """Write what is queued (for at most ``grace`` seconds), then stop."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), grace)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _run(self) -> None:
        while True:
            pending = await self._queue.get()
            try:
                await self._write(pending)
            except Exception as exc:  # an Event is never worth a crash
                log.warning("cannot write event", reason=pending.reason, error=repr(exc))
            finally:
                self._queue.task_done()

    async def _write(self, pending: _Pending) -> None:
        target = pending.about if isinstance(pending.about, Target) else await pending.about()
        if target is None:
            return
        key = (target, pending.type, pending.reason, pending.message)
        seen = self._recent.pop(key, None)
        if seen is not None and time.monotonic() - seen[1] < REPEAT_WINDOW:
            event = seen[0]
            event.count = (event.count or 1) + 1
            event.lastTimestamp = datetime.now(UTC)
            written = await self._send(event, pending, replace=True)
        else:
            written = await self._send(self._new(target, pending), pending, replace=False)
        if written is not None:
            self._recent[key] = (written, time.monotonic())
            while len(self._recent) > _RECENT:
                del self._recent[next(iter(self._recent))]

    def _new(self, target: Target, pending: _Pending) -> Event:
        now = datetime.now(UTC)
        namespace = target.namespace or "default"
        return Event(
            metadata=ObjectMeta(name=f"{target.name}.{time.time_ns():x}", namespace=namespace),
            involvedObject=ObjectReference(
                apiVersion="v1",
                kind=target.kind,
                name=target.name,
                namespace=target.namespace or None,
            ),
            reason=pending.reason,
            message=pending.message,
            type=pending.type,
            source=EventSource(component=COMPONENT),
            reportingComponent=COMPONENT,
            reportingInstance=self._identity,
            firstTimestamp=now,
            lastTimestamp=now,
            count=1,
        )

    async def _send(self, event: Event, pending: _Pending, *, replace: bool) -> Event | None:
        try:
            if replace:
                return await self._client.replace(event)
            return await self._client.create(event)
        except (ApiError, *TRANSPORT_ERRORS) as exc:
            log.warning("cannot write event", reason=pending.reason, error=str(exc))
            return None
