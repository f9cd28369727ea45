"""Attaches Oxide refused after a stop, remembered so a retry does not cost another cycle.

Why: the preflight checks catch what we can know before the stop, but Oxide may still refuse
an attach once the instance is off (a rule we do not know of, a limit lower than configured).
The CO retries a failed publish with backoff, for ever; without a memory each retry would
power the node off again for the same refusal. So a refusal is kept, with what the disk and
the instance looked like after the cycle, and a retry of the same attach gets the same answer
at once -- until the disk or the instance has changed (a slot was freed, the disk moved) or
``ttl`` (10 minutes) has passed, when one more cycle may try again.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import structlog

from oxide_csi import errors
from oxide_csi.oxide import Disk, OxideClient, api_errors

log = structlog.get_logger(__name__)

#: How long a refusal is answered from memory.
REFUSAL_TTL = 600.0

#: What "has not changed" compares: the disk's state, owner and modification time, and the set
#: of disks on the instance.
Fingerprint = tuple[str, str | None, str, frozenset[str]]


def fingerprint(disk: Disk, on_instance: Iterable[str]) -> Fingerprint:
    modified = disk.time_modified.isoformat() if disk.time_modified else ""
    return (disk.state, disk.instance_id, modified, frozenset(on_instance))


def is_refusal(exc: BaseException) -> bool:
    """Whether an attach failed because Oxide refused it (400), not by bad luck."""
    return isinstance(exc, api_errors.OxideInvalidRequest)


@dataclass
class _Refusal:
    error: errors.CSIError
    at: float
    seen: Fingerprint | None = None  # None until the cycle that met it has ended


class RefusalCache:
    """Refused attaches by (disk id, instance id). ``clock`` is injectable for tests."""

    def __init__(
        self, ttl: float = REFUSAL_TTL, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ttl = ttl
        self._clock = clock
        self._entries: dict[tuple[str, str], _Refusal] = {}

    def note(self, disk_id: str, instance_id: str, error: errors.CSIError) -> None:
        """A refusal met while applying; :meth:`seal` adds what things looked like.

        Expired entries go here too, so refusals nobody retries do not pile up."""
        now = self._clock()
        self._entries = {k: r for k, r in self._entries.items() if now - r.at < self._ttl}
        self._entries[(disk_id, instance_id)] = _Refusal(error, now)

    async def seal(self, client: OxideClient, instance_id: str, deadline: float) -> None:
        """Record the disk and instance as the cycle left them, for every refusal it met.

        A refusal that cannot be fingerprinted (the read failed) is forgotten: a retry then
        tries again rather than being refused on a guess.
        """
        pending = [
            key for key, ref in self._entries.items() if key[1] == instance_id and ref.seen is None
        ]
        if not pending:
            return
        try:
            listed = {
                d.id async for d in client.list_instance_disks(instance_id, deadline=deadline)
            }
            for key in pending:
                disk = await client.get_disk(key[0], deadline=deadline)
                self._entries[key].seen = fingerprint(disk, listed)
        except api_errors.OxideError as exc:
            log.warning("cannot record the state of refused attaches", error=str(exc))
            for key in pending:
                ref = self._entries.get(key)
                if ref is not None and ref.seen is None:
                    del self._entries[key]

    def check(self, disk: Disk, instance_id: str, on_instance: Iterable[str]) -> None:
        """Raise the remembered refusal if nothing changed since; forget it if anything did."""
        key = (disk.id, instance_id)
        ref = self._entries.get(key)
        if ref is None:
            return
        age = self._clock() - ref.at
        if age >= self._ttl or (
            ref.seen is not None and ref.seen != fingerprint(disk, on_instance)
        ):
            del self._entries[key]
            return
        raise type(ref.error)(
            f"{ref.error.message} (Oxide refused this {round(age)} s ago; not retried until the "
            f"disk or the instance changes, or for {round(self._ttl - age)} s more)"
        )

    def __len__(self) -> int:
        return len(self._entries)
