"""Released-disk ledgers as JSON files (the file backend: ``--state-dir``/``released``).

Written like the attach record (``file_store.py``): atomically and fsynced, since an entry lost
in a crash is a disk that stays attached for ever, or a deleted claim's data never deleted.
The file backend serves one controller, so one lock per instance in this process makes each
read-modify-write atomic.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
from pathlib import Path

import structlog

from oxide_csi.controller.attach.file_store import remove_durably, write_atomically
from oxide_csi.controller.attach.ledger import Ledger, LedgerChange
from oxide_csi.controller.attach.records import RecordError
from oxide_csi.inflight import KeyedLocks

log = structlog.get_logger(__name__)

_SUFFIX = ".json"
#: Instance ids are UUIDs; anything else must not become a path.
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,127}$")


class FileLedgerStore:
    """One ``<instance_id>.json`` per instance with released disks, under ``directory``."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self._dir = Path(directory)
        self._locks = KeyedLocks()

    def __repr__(self) -> str:
        return f"FileLedgerStore({str(self._dir)!r})"

    def _path(self, instance_id: str) -> Path:
        if not _SAFE_ID.match(instance_id):
            raise ValueError(f"instance id {instance_id!r} is not usable as a file name")
        return self._dir / f"{instance_id}{_SUFFIX}"

    async def load(self, instance_id: str) -> Ledger | None:
        return await asyncio.to_thread(self._load, self._path(instance_id))

    async def update(self, instance_id: str, instance_name: str, change: LedgerChange) -> Ledger:
        path = self._path(instance_id)
        async with self._locks.hold(instance_id):
            current = await asyncio.to_thread(self._load, path)
            new = change(current or Ledger(instance_id, instance_name))
            if new != current:
                await asyncio.to_thread(self._write, path, new)
            return new

    async def load_all(self) -> list[Ledger]:
        return await asyncio.to_thread(self._load_all)

    def _load(self, path: Path) -> Ledger | None:
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            return Ledger.from_json(json.loads(text))
        except (ValueError, RecordError) as exc:
            # Kept for an operator; nothing acts on what it cannot read.
            log.error("unreadable released-disk ledger", path=str(path), error=str(exc))
            return None

    def _write(self, path: Path, ledger: Ledger) -> None:
        if not ledger.disks:
            remove_durably(path)
            return
        write_atomically(path, json.dumps(ledger.to_json(), indent=2, sort_keys=True).encode())

    def _load_all(self) -> list[Ledger]:
        if not self._dir.is_dir():
            return []
        found = []
        for path in sorted(self._dir.glob(f"*{_SUFFIX}")):
            ledger = self._load(path)
            if ledger is not None:
                found.append(ledger)
        return found
