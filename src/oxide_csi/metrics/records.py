"""An attach-record store that tells the metrics how many records are pending.

Why wrap the store rather than count in the worker: the store is the one place that knows
every record, including those a crashed predecessor left behind (found by the first
``load_all`` at start-up) and those recovery deletes. Counting at the store keeps the gauge
true to what is on disk without the coordinator knowing metrics exist.
"""

from __future__ import annotations

from collections.abc import Callable

from oxide_csi.controller.attach import AttachRecord, AttachRecordStore

#: ``(records, operations)`` after every change.
RecordsObserver = Callable[[int, int], None]


class ObservedRecordStore:
    """Delegates to ``inner`` and reports the record and operation counts after each change."""

    def __init__(self, inner: AttachRecordStore, observer: RecordsObserver) -> None:
        self._inner = inner
        self._observer = observer
        self._ops: dict[str, int] = {}

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
        self._publish()
        return records

    def _note(self, instance_id: str, record: AttachRecord | None) -> None:
        if record is None:
            self._ops.pop(instance_id, None)
        else:
            self._ops[instance_id] = len(record.ops)
        self._publish()

    def _publish(self) -> None:
        self._observer(len(self._ops), sum(self._ops.values()))
