"""An attach-record store that tells the metrics how many records are pending.

Why wrap the store rather than count in the worker: the store is the one place that knows
every record, including those a crashed predecessor left behind (found by the first
``load_all`` at start-up) and those recovery deletes. Counting at the store keeps the gauge
true to what is on disk without the coordinator knowing metrics exist.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime

from oxide_csi.controller.attach import AttachRecord, AttachRecordStore

#: ``(records, operations)`` after every change.
RecordsObserver = Callable[[int, int], None]


class ObservedRecordStore:
    """Delegates to ``inner`` and reports the record and operation counts after each change."""

    def __init__(
        self,
        inner: AttachRecordStore,
        observer: RecordsObserver,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._inner = inner
        self._observer = observer
        self._clock = clock
        self._ops: dict[str, int] = {}
        #: Per instance with a record: since when (epoch seconds) it is off on our account.
        self._since: dict[str, float] = {}

    def longest_stopped_seconds(self) -> float:
        """How long the instance that has been off on the plugin's account the longest has
        been so: from the first save of its record (written just before the stop) until the
        record goes (just after the start). For a record a predecessor left, its last update
        is the lower bound. 0 when no instance is off."""
        if not self._since:
            return 0.0
        return max(0.0, self._clock() - min(self._since.values()))

    async def load(self, instance_id: str) -> AttachRecord | None:
        record = await self._inner.load(instance_id)
        self._note(instance_id, record)
        return record

    async def save(self, record: AttachRecord) -> None:
        await self._inner.save(record)
        self._note(record.instance_id, record)

    async def delete(self, instance_id: str) -> None:
        await self._inner.delete(instance_id)
        self._note(instance_id, None)

    async def load_all(self) -> list[AttachRecord]:
        records = await self._inner.load_all()
        self._ops = {rec.instance_id: len(rec.ops) for rec in records}
        self._since = {
            rec.instance_id: self._since.get(rec.instance_id) or self._written(rec)
            for rec in records
        }
        self._publish()
        return records

    def _note(self, instance_id: str, record: AttachRecord | None) -> None:
        if record is None:
            self._ops.pop(instance_id, None)
            self._since.pop(instance_id, None)
        else:
            self._ops[instance_id] = len(record.ops)
            self._since.setdefault(instance_id, self._written(record))
        self._publish()

    def _written(self, record: AttachRecord) -> float:
        """When ``record`` was written, by its own timestamp (now if it has none)."""
        try:
            return datetime.fromisoformat(record.updated).timestamp()
        except ValueError:
            return self._clock()

    def _publish(self) -> None:
        self._observer(len(self._ops), sum(self._ops.values()))
