"""The released-disk ledger: per instance, the disks left attached on purpose, and what is owed.

Why a ledger: with the deferred detach policy, ControllerUnpublishVolume does not power the
instance off; the disk stays attached, idle, and is detached in the next cycle that happens
for that instance anyway. Which disks those are must survive a controller restart and a move
(a disk forgotten here would stay attached for ever and hold a slot; a deletion forgotten here
would leave a claim's data behind). So it lives in the state backend beside the attach record:
one ledger per instance, holding its released disks (since when) and, per disk, whether
DeleteVolume has been answered for it and the deletion is owed (since when).

Why separate from the attach record: the record exists only while a cycle is in flight and is
deleted once the instance runs again; released disks wait for days.

A crash at any point leaves a ledger that :mod:`~oxide_csi.controller.attach.released`
reconciles with Oxide: an entry whose disk is no longer attached to its instance is dropped
(after the owed deletion, if any, is done), one for a disk that is gone is done.

``cycle_until`` marks entries a cycle has taken into its batch (epoch seconds, the end of that
cycle's deadline): a publish back to the instance must then wait for the cycle (ABORTED), and
another controller sees the mark too. A mark older than that deadline is void.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from oxide_csi.controller.attach.records import RecordError, text_field

#: Bump when the JSON shape changes incompatibly; unknown versions are refused, not guessed at.
LEDGER_VERSION = 1


@dataclass(frozen=True)
class ReleasedDisk:
    """One disk released on its instance (epoch seconds throughout)."""

    disk_id: str
    disk_name: str
    since: float
    #: Set once DeleteVolume was answered for it: the disk is to be deleted after its detach.
    delete_since: float | None = None
    #: Taken into a cycle's batch until then (see the module's docstring); 0: not taken.
    cycle_until: float = 0.0

    @property
    def owed_delete(self) -> bool:
        return self.delete_since is not None

    def in_cycle(self, now: float) -> bool:
        return self.cycle_until > now

    def to_json(self) -> dict[str, Any]:
        raw: dict[str, Any] = {"disk_id": self.disk_id, "disk_name": self.disk_name}
        raw["since"] = self.since
        if self.delete_since is not None:
            raw["delete_since"] = self.delete_since
        if self.cycle_until:
            raw["cycle_until"] = self.cycle_until
        return raw

    @classmethod
    def from_json(cls, raw: Any) -> ReleasedDisk:
        delete_since = raw.get("delete_since")
        return cls(
            disk_id=text_field(raw, "disk_id"),
            disk_name=str(raw.get("disk_name", "")),
            since=float(raw["since"]),
            delete_since=None if delete_since is None else float(delete_since),
            cycle_until=float(raw.get("cycle_until", 0.0)),
        )


@dataclass(frozen=True)
class Ledger:
    """One instance's released disks; an empty ledger is not stored at all."""

    instance_id: str
    instance_name: str
    disks: tuple[ReleasedDisk, ...] = ()
    updated: float = field(default_factory=time.time)

    def get(self, disk_id: str) -> ReleasedDisk | None:
        return next((d for d in self.disks if d.disk_id == disk_id), None)

    def put(self, entry: ReleasedDisk) -> Ledger:
        """This ledger with ``entry`` added, or replacing the entry of its disk."""
        kept = tuple(d for d in self.disks if d.disk_id != entry.disk_id)
        return replace(self, disks=(*kept, entry), updated=time.time())

    def without(self, disk_ids: Iterable[str]) -> Ledger:
        gone = set(disk_ids)
        return replace(
            self, disks=tuple(d for d in self.disks if d.disk_id not in gone), updated=time.time()
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "version": LEDGER_VERSION,
            "instance_id": self.instance_id,
            "instance_name": self.instance_name,
            "disks": [d.to_json() for d in self.disks],
            "updated": self.updated,
        }

    @classmethod
    def from_json(cls, raw: Any) -> Ledger:
        if not isinstance(raw, dict):
            raise RecordError("released-disk ledger is not a JSON object")
        if raw.get("version") != LEDGER_VERSION:
            raise RecordError(f"unsupported ledger version {raw.get('version')!r}")
        try:
            return cls(
                instance_id=text_field(raw, "instance_id"),
                instance_name=str(raw.get("instance_name", "")),
                disks=tuple(ReleasedDisk.from_json(d) for d in raw["disks"]),
                updated=float(raw.get("updated", 0.0)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RecordError(f"malformed released-disk ledger: {exc}") from None


#: A change to one ledger: gets the current one (empty if none), returns the new one. It may
#: raise (a CSI error) to refuse; then nothing is written.
LedgerChange = Callable[[Ledger], Ledger]


class LedgerStore(Protocol):
    """Durable storage of ledgers, one per instance id.

    ``update`` is a read-modify-write that is atomic against every other writer (other
    coroutines, other controllers): ``change`` may run more than once (after a conflict) and
    must be a pure function of the ledger it gets. It is durable when it returns. A ledger that
    becomes empty is deleted.
    """

    async def load(self, instance_id: str) -> Ledger | None: ...

    async def update(
        self, instance_id: str, instance_name: str, change: LedgerChange
    ) -> Ledger: ...

    async def load_all(self) -> list[Ledger]: ...
