"""An attach record store that keeps records in a dict, for tests only.

It survives nothing, so the plugin never uses it: the controller always writes its records to a
store that outlives the process. Tests that are about the coordinator's rules rather than about
durability use it to stay fast and free of files.
"""

from __future__ import annotations

from oxide_csi.controller.attach import AttachRecord


class MemoryAttachRecordStore:
    """Records in a dict; satisfies ``AttachRecordStore``."""

    def __init__(self) -> None:
        self._records: dict[str, AttachRecord] = {}

    async def load(self, instance_id: str) -> AttachRecord | None:
        return self._records.get(instance_id)

    async def save(self, record: AttachRecord) -> None:
        self._records[record.instance_id] = record

    async def delete(self, instance_id: str) -> None:
        self._records.pop(instance_id, None)

    async def load_all(self) -> list[AttachRecord]:
        return list(self._records.values())
