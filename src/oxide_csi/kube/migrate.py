"""Upgrade from the file backend: records left in the old state directory move to Kubernetes.

Why before anything else: a controller upgraded in the middle of a cycle left an instance
stopped and a record file saying so. If the new controller started serving first, a publish
could find the instance stopped with no record in Kubernetes and nobody would owe it a start.
So the import runs before recovery and before the gRPC server opens.

Each imported file is renamed to ``<name>.imported`` (kept for the operator, ignored by the
file store), after its record is safely in Kubernetes: a crash in between imports it again,
which is harmless, since an existing ConfigMap is left as it is.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import structlog

from oxide_csi.controller.attach.file_store import FileAttachRecordStore
from oxide_csi.controller.attach.records import AttachRecordStore

log = structlog.get_logger(__name__)

IMPORTED_SUFFIX = ".imported"


async def import_file_records(directory: Path, store: AttachRecordStore) -> int:
    """Move every readable record under ``directory`` into ``store``; return how many."""
    old = FileAttachRecordStore(directory)
    records = await old.load_all()
    for record in records:
        if await store.load(record.instance_id) is None:
            await store.save(record)
            log.warning(
                "imported an attach record from the file backend",
                instance=record.instance_name,
                phase=record.phase,
                directory=str(directory),
            )
        else:
            log.warning(
                "attach record exists in Kubernetes already; the file's copy is not imported",
                instance=record.instance_name,
            )
        path = directory / f"{record.instance_id}.json"
        await asyncio.to_thread(path.rename, path.with_name(path.name + IMPORTED_SUFFIX))
    return len(records)
