"""The operator's release request (``oxide-csi release-instance``), through the state backend.

Why through the state backend and not an RPC of ours: the controller that may act on an
instance is the one that can hold its fence, wherever it runs; the request is written where
every controller reads (the state directory, or a ConfigMap in the controller's namespace), and
the controller answers in the same object: when it was done, which disks were released, or
why not. The command line tool writes a request, waits for the answer, and removes it.

A request names the instance as the operator wrote it (name or id): resolving it needs the
Oxide API, which only the controller holds.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import structlog

from oxide_csi import errors
from oxide_csi.controller.attach.file_store import remove_durably, write_atomically
from oxide_csi.controller.attach.records import RecordError
from oxide_csi.oxide import api_errors

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ReleaseRequest:
    #: Random hex: names the file or ConfigMap.
    id: str
    instance: str
    requested: float
    done: float | None = None
    released: tuple[str, ...] = ()
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "instance": self.instance,
            "requested": self.requested,
            "done": self.done,
            "released": list(self.released),
            "error": self.error,
        }

    @classmethod
    def from_json(cls, raw: Any) -> ReleaseRequest:
        try:
            done = raw.get("done")
            return cls(
                id=str(raw["id"]),
                instance=str(raw["instance"]),
                requested=float(raw["requested"]),
                done=None if done is None else float(done),
                released=tuple(str(name) for name in raw.get("released", [])),
                error=str(raw.get("error", "")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RecordError(f"malformed release request: {exc}") from None


def new_request(instance: str) -> ReleaseRequest:
    return ReleaseRequest(id=os.urandom(8).hex(), instance=instance, requested=time.time())


class ReleaseRequestStore(Protocol):
    async def put(self, request: ReleaseRequest) -> None: ...

    async def get(self, request_id: str) -> ReleaseRequest | None: ...

    async def pending(self) -> list[ReleaseRequest]: ...

    async def delete(self, request_id: str) -> None: ...


class FileReleaseRequests:
    """One ``<id>.json`` per request under ``directory`` (``--state-dir``/release-requests)."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self._dir = Path(directory)

    def _path(self, request_id: str) -> Path:
        if not request_id.isalnum():
            raise ValueError(f"release request id {request_id!r} is not usable as a file name")
        return self._dir / f"{request_id}.json"

    async def put(self, request: ReleaseRequest) -> None:
        data = json.dumps(request.to_json(), indent=2).encode()
        await asyncio.to_thread(write_atomically, self._path(request.id), data)

    async def get(self, request_id: str) -> ReleaseRequest | None:
        return await asyncio.to_thread(self._read, self._path(request_id))

    async def pending(self) -> list[ReleaseRequest]:
        found = await asyncio.to_thread(self._read_all)
        return [r for r in found if r.done is None]

    async def delete(self, request_id: str) -> None:
        await asyncio.to_thread(remove_durably, self._path(request_id))

    def _read(self, path: Path) -> ReleaseRequest | None:
        try:
            return ReleaseRequest.from_json(json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None
        except (ValueError, RecordError) as exc:
            log.error("unreadable release request", path=str(path), error=str(exc))
            return None

    def _read_all(self) -> list[ReleaseRequest]:
        if not self._dir.is_dir():
            return []
        found = (self._read(path) for path in sorted(self._dir.glob("*.json")))
        return [r for r in found if r is not None]


class Releaser(Protocol):
    async def release_instance(self, instance: str, *, deadline: float) -> list[str]: ...


async def answer_requests(
    releaser: Releaser, store: ReleaseRequestStore, *, interval: float, cycle_timeout: float
) -> None:
    """Serve release requests until cancelled: each pending one is carried out (one cycle of
    its instance) and answered in place."""
    while True:
        try:
            for request in await store.pending():
                await _answer(releaser, store, request, cycle_timeout)
        except (OSError, errors.CSIError) as exc:  # the next pass tries again
            log.warning("cannot read release requests", error=str(exc))
        await asyncio.sleep(interval)


async def _answer(
    releaser: Releaser, store: ReleaseRequestStore, request: ReleaseRequest, cycle_timeout: float
) -> None:
    log.info("operator asked to release an instance's disks", instance=request.instance)
    try:
        released = await releaser.release_instance(
            request.instance, deadline=time.monotonic() + cycle_timeout
        )
        answer = replace(request, done=time.time(), released=tuple(released))
    except (errors.CSIError, api_errors.OxideError) as exc:
        answer = replace(request, done=time.time(), error=str(exc))
    await store.put(answer)
