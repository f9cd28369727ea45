"""Attach records as JSON files in a directory (dev mode: ``--state-dir``).

Why every fsync: the record is what tells a restarted controller that it powered an instance
off. A record that sits in the page cache when the machine dies is no record at all. So a save
writes a temporary file, fsyncs it, renames it over the old one (atomic on POSIX: a reader sees
the old record or the new one, never half of each), and fsyncs the directory so the rename
itself is durable. Deleting fsyncs the directory for the same reason: a record that comes back
after a crash would make recovery restart an instance someone has since stopped on purpose.

The blocking file calls run in a worker thread so a slow disk does not stall the event loop
that is serving gRPC.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
from pathlib import Path

import structlog

from oxide_csi.controller.attach.records import AttachRecord, RecordError

log = structlog.get_logger(__name__)

_SUFFIX = ".json"
_TMP_SUFFIX = ".tmp"
#: Instance ids are UUIDs; anything else must not become a path (no ``..``, no ``/``).
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,127}$")


class FileAttachRecordStore:
    """One ``<instance_id>.json`` per instance under ``directory`` (created if missing)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self._dir = Path(directory)

    @property
    def directory(self) -> Path:
        return self._dir

    def __repr__(self) -> str:
        return f"FileAttachRecordStore({str(self._dir)!r})"

    def _path(self, instance_id: str) -> Path:
        if not _SAFE_ID.match(instance_id):
            raise ValueError(f"instance id {instance_id!r} is not usable as a file name")
        return self._dir / f"{instance_id}{_SUFFIX}"

    async def load(self, instance_id: str) -> AttachRecord | None:
        return await asyncio.to_thread(self._load, self._path(instance_id))

    async def save(self, record: AttachRecord) -> None:
        await asyncio.to_thread(self._save, record)

    async def delete(self, instance_id: str) -> None:
        await asyncio.to_thread(self._delete, self._path(instance_id))

    async def load_all(self) -> list[AttachRecord]:
        return await asyncio.to_thread(self._load_all)

    # ---- blocking parts ------------------------------------------------------------------

    def _load(self, path: Path) -> AttachRecord | None:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            return AttachRecord.from_json(json.loads(text))
        except (ValueError, RecordError) as exc:
            # Keep the file for an operator; recovery cannot act on what it cannot read.
            log.error("unreadable attach record", path=str(path), error=str(exc))
            return None

    def _save(self, record: AttachRecord) -> None:
        data = json.dumps(record.to_json(), indent=2, sort_keys=True).encode()
        write_atomically(self._path(record.instance_id), data)

    def _delete(self, path: Path) -> None:
        remove_durably(path)

    def _load_all(self) -> list[AttachRecord]:
        if not self._dir.is_dir():
            return []
        records = []
        for path in sorted(self._dir.iterdir()):
            if path.name.endswith(_SUFFIX + _TMP_SUFFIX):
                # A save that died before its rename: the previous record (if any) still
                # stands, so the torn temporary carries nothing we need.
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                continue
            if not path.name.endswith(_SUFFIX):
                continue
            record = self._load(path)
            if record is not None:
                records.append(record)
        return records


def write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves the old content or the new, durably:
    a temporary file, fsynced, renamed over ``path``, and the directory fsynced."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + _TMP_SUFFIX)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    sync_dir(path.parent)


def remove_durably(path: Path) -> None:
    """Remove ``path`` (gone already is fine) and make the removal survive a crash."""
    try:
        path.unlink()
    except FileNotFoundError:
        return
    sync_dir(path.parent)


def sync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
