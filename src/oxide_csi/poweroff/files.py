"""The power-off channel under a shared directory: ``oxide-csi dev``, one machine.

With ``--state-backend file`` controller and node share a machine (dev mode runs both in one
process), so they share a directory too: ``heartbeats/<instance>.json`` written by the node
plugin, ``requests/<instance>.json`` written by the controller. Every write goes to a temporary
file that is renamed over the old one, so a reader sees a whole message or the previous one.
The node notices a request by looking at the file a few times a second (no file-watch API in
the standard library; a stat is cheap), which is far below the time a guest takes to shut down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

import structlog

from oxide_csi.poweroff.messages import Heartbeat, MessageError, PowerOffRequest

log = structlog.get_logger(__name__)
T = TypeVar("T")

#: How often the node looks for a request.
POLL_SECONDS = 0.2
#: Instance ids are UUIDs; anything else must not become a path (no ``..``, no ``/``).
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,127}$")


class FileChannel:
    """Both sides of the channel under ``directory`` (created when first written)."""

    def __init__(self, directory: Path, *, poll: float = POLL_SECONDS) -> None:
        self.directory = directory
        self._poll = poll

    def heartbeat_path(self, instance_id: str) -> Path:
        return self.directory / "heartbeats" / _file_name(instance_id)

    def request_path(self, instance_id: str) -> Path:
        return self.directory / "requests" / _file_name(instance_id)

    # ---- controller ----------------------------------------------------------------------

    async def heartbeat(self, instance_id: str) -> Heartbeat | None:
        raw = await asyncio.to_thread(_read, self.heartbeat_path(instance_id))
        return _parse(Heartbeat.from_json, raw, "heartbeat", instance_id)

    async def send(self, request: PowerOffRequest) -> None:
        path = self.request_path(request.instance_id)
        await asyncio.to_thread(_write, path, request.to_json(), True)

    async def withdraw(self, request: PowerOffRequest) -> None:
        await asyncio.to_thread(self._withdraw, request)

    async def sweep(self, now: float) -> int:
        return await asyncio.to_thread(self._sweep, now)

    # ---- node ----------------------------------------------------------------------------

    async def beat(self, heartbeat: Heartbeat) -> None:
        path = self.heartbeat_path(heartbeat.instance_id)
        await asyncio.to_thread(_write, path, heartbeat.to_json(), False)

    async def requests(self, instance_id: str) -> AsyncIterator[PowerOffRequest]:
        path = self.request_path(instance_id)
        seen: tuple[int, int, int] | None = None
        while True:
            try:
                st = path.stat()
                now_seen: tuple[int, int, int] | None = (st.st_ino, st.st_mtime_ns, st.st_size)
            except FileNotFoundError:
                now_seen = None
            if now_seen is not None and now_seen != seen:
                raw = await asyncio.to_thread(_read, path)
                request = _parse(PowerOffRequest.from_json, raw, "request", instance_id)
                if request is not None:
                    yield request
            seen = now_seen
            await asyncio.sleep(self._poll)

    async def close(self) -> None:
        return None

    # ---- blocking parts ------------------------------------------------------------------

    def _withdraw(self, request: PowerOffRequest) -> None:
        path = self.request_path(request.instance_id)
        raw = _read(path)
        if isinstance(raw, dict) and raw.get("id") == request.id:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def _sweep(self, now: float) -> int:
        folder = self.directory / "requests"
        if not folder.is_dir():
            return 0
        removed = 0
        for path in folder.glob("*.json"):
            try:
                expired = PowerOffRequest.from_json(_read(path)).expires <= now
            except MessageError:
                expired = True  # unreadable: no node acts on it either
            if expired:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed += 1
        return removed


def _file_name(instance_id: str) -> str:
    if not _SAFE_ID.match(instance_id):
        raise ValueError(f"instance id {instance_id!r} is not usable as a file name")
    return f"{instance_id}.json"


def _read(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except ValueError:
        return {}  # torn or foreign: parsing refuses it


def _write(path: Path, data: dict[str, Any], durable: bool) -> None:
    """Replace ``path`` atomically; ``durable`` fsyncs the file before the rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as out:
        json.dump(data, out, sort_keys=True)
        if durable:
            out.flush()
            os.fsync(out.fileno())
    os.replace(tmp, path)


def _parse(parse: Callable[[Any], T], raw: Any, what: str, instance_id: str) -> T | None:
    if raw is None:
        return None
    try:
        parsed = parse(raw)
    except MessageError as exc:
        log.warning(f"unreadable power-off {what}", instance=instance_id, error=str(exc))
        return None
    return parsed
