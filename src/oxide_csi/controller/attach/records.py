"""The durable attach record: what must survive a crash between stopping and restarting.

Why it exists: attaching a disk on Oxide means powering the instance off. If the controller
dies after the stop, nobody else knows the instance was running and must come back -- the node
(and every pod on it) would stay down. So before the stop we write down, per instance, that it
was running, which attaches/detaches we were about to apply, and how far we got. Recovery
(at start-up and periodically) reads every record, finishes the pending work while the instance
is still stopped, starts the instance again, and deletes the record.

Where records live is pluggable through :class:`AttachRecordStore`; any store that keeps the
contract below will do. The one in this module's package is ``FileAttachRecordStore``
(``file_store.py``): one JSON file per instance, written atomically, under ``--state-dir``,
which the Helm chart puts on a hostPath of the node the controller is pinned to (so records
survive pod restarts there, not a move to another node). The tests also use an in-memory one
(``tests/controller/attach/memory_store.py``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

#: Bump when the JSON shape changes incompatibly; unknown versions are refused, not guessed at.
RECORD_VERSION = 1


class OpKind(enum.StrEnum):
    ATTACH = "attach"
    DETACH = "detach"


class Phase(enum.StrEnum):
    """How far the cycle that wrote the record got; recovery does the same work for each, the
    phase is there for operators reading a record and for logs."""

    STOPPING = "stopping"
    APPLYING = "applying"
    STARTING = "starting"


class RecordError(ValueError):
    """A stored record cannot be parsed; recovery skips it and logs, never guesses."""


@dataclass(frozen=True)
class OpRecord:
    kind: OpKind
    disk_id: str


@dataclass(frozen=True)
class AttachRecord:
    """One instance's pending cycle. ``was_running`` is the whole point: it says we powered the
    instance off and owe it a start."""

    instance_id: str
    instance_name: str
    was_running: bool
    phase: Phase
    ops: tuple[OpRecord, ...] = ()
    updated: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    def with_phase(self, phase: Phase, ops: tuple[OpRecord, ...] | None = None) -> AttachRecord:
        return replace(
            self,
            phase=phase,
            ops=self.ops if ops is None else ops,
            updated=datetime.now(UTC).isoformat(),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "version": RECORD_VERSION,
            "instance_id": self.instance_id,
            "instance_name": self.instance_name,
            "was_running": self.was_running,
            "phase": self.phase.value,
            "ops": [{"kind": op.kind.value, "disk_id": op.disk_id} for op in self.ops],
            "updated": self.updated,
        }

    @classmethod
    def from_json(cls, raw: Any) -> AttachRecord:
        if not isinstance(raw, dict):
            raise RecordError("attach record is not a JSON object")
        if raw.get("version") != RECORD_VERSION:
            raise RecordError(f"unsupported attach record version {raw.get('version')!r}")
        try:
            ops = tuple(
                OpRecord(OpKind(str(op["kind"])), text_field(op, "disk_id")) for op in raw["ops"]
            )
            return cls(
                instance_id=text_field(raw, "instance_id"),
                instance_name=str(raw.get("instance_name", "")),
                was_running=bool(raw["was_running"]),
                phase=Phase(str(raw["phase"])),
                ops=ops,
                updated=str(raw.get("updated", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RecordError(f"malformed attach record: {exc}") from None


def text_field(raw: Any, key: str) -> str:
    value = raw[key]
    if not isinstance(value, str) or not value:
        raise RecordError(f"field {key!r} must be a non-empty string")
    return value


class AttachRecordStore(Protocol):
    """Durable storage of attach records, one per instance id.

    ``save`` must be durable when it returns (the caller powers the instance off next) and
    atomic (a crash leaves the old record or the new one, never a torn one).
    """

    async def load(self, instance_id: str) -> AttachRecord | None: ...

    async def save(self, record: AttachRecord) -> None: ...

    async def delete(self, instance_id: str) -> None: ...

    async def load_all(self) -> list[AttachRecord]: ...
