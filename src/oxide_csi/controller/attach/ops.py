"""Operations in flight, their results, and how their failures become CSI errors.

An operation is one caller's wish (attach or detach one disk to or from one instance) plus the
future that carries its own outcome. The future belongs to the coordinator, not to the caller:
a caller whose deadline passes walks away, the operation carries on, and the CO's retry finds
the same future and waits on it again.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from oxide_csi import errors
from oxide_csi.controller.attach.records import OpKind
from oxide_csi.controller.oxide_failures import During, from_oxide
from oxide_csi.oxide import api_errors


@dataclass(frozen=True)
class AttachResult:
    """What a successful attach reports: the disk's name is what the node needs, because the
    guest sees the disk as an NVMe device whose serial is that name's first 20 bytes."""

    disk_id: str
    disk_name: str
    instance_id: str
    instance_name: str
    #: True when the disk was attached already and nothing was done (no power cycle).
    already_attached: bool = False


@dataclass(eq=False)
class PendingOp:
    """One queued attach or detach; identity (not value) equality, each is unique."""

    kind: OpKind
    disk_id: str
    disk_name: str
    instance_id: str
    instance_name: str
    #: A call that overrides a crash leftover (see ``leftovers.py``): it succeeds without a
    #: power cycle when the disk already is where it wants it.
    settle: bool = False
    #: An attach of a disk that is attached already but whose hot-plugged device never
    #: appeared: detached and attached again inside a power cycle (see ``hot.py``).
    repair: bool = False
    #: A detach of a released disk (``released.py``): a publish elsewhere waits for it.
    released: bool = False
    future: asyncio.Future[None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    @property
    def done(self) -> bool:
        return self.future.done()

    def succeed(self) -> None:
        if not self.future.done():
            self.future.set_result(None)

    def fail(self, exc: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(exc)
            # Nobody may be waiting any more (the caller's deadline passed and no retry came);
            # mark the exception retrieved so asyncio does not log "never retrieved".
            self.future.exception()

    def result(self) -> AttachResult:
        return AttachResult(self.disk_id, self.disk_name, self.instance_id, self.instance_name)


def translate(exc: BaseException, what: str) -> Exception:
    """The CSI error for a failure of ``what`` (e.g. 'attach disk "d" to "i"').

    Oxide errors take the one mapping, read in the attach context (see
    :mod:`oxide_csi.controller.oxide_failures`, where that context's choices are named).
    """
    if isinstance(exc, errors.CSIError):
        return exc
    if isinstance(exc, api_errors.OxideError):
        return from_oxide(exc, what, During.ATTACH)
    if isinstance(exc, OSError):
        # The record store failed (disk full, read-only state dir): nothing was stopped.
        return errors.Unavailable(f"{what}: cannot write the attach record: {exc}")
    return errors.Internal(f"{what}: unexpected {type(exc).__name__}: {exc}")
