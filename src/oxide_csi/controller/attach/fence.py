"""The fence: the worker acts on an instance only while it may, and never past that.

Why a fence at all: two controllers can run at once (two replicas, or an old pod on a
partitioned node beside its replacement). Both may believe they owe the same instance a cycle;
if both stopped, attached and started it, one would power the node off under the other's feet.
So a worker holds the instance's fence for the whole cycle (:meth:`Fence.hold`) and asks it
before every Oxide change (stop, attach, detach, start) for the deadline that change may use
(:meth:`Hold.change_deadline`): never later than the fence is known to be ours, and refused
outright (:class:`FenceLost`) when too little of it is left or it is lost.

Implementations: :data:`UNFENCED` (file backend, one controller: always ours) and the Lease
per instance of the Kubernetes backend (``oxide_csi.kube.leases``).

Where the fence is *shared* (other controllers may act on the same instances), a caller's view
of a disk may predate another controller's cycle that has since done the work; so before a stop
:func:`drop_settled` answers the operations the instance's disks already show as done, and a
second controller receiving the same publishes causes no second stop. One listing per cycle
that stops: nothing beside a power cycle.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from oxide_csi import errors
from oxide_csi.controller.attach.ops import PendingOp
from oxide_csi.controller.attach.records import OpKind
from oxide_csi.oxide import OxideClient


class FenceLost(errors.Unavailable):
    """The fence is no longer (surely) ours: stop acting; whoever holds it next finishes."""


class Hold(Protocol):
    """One held fence, valid for one cycle."""

    def change_deadline(self, deadline: float) -> float:
        """The deadline for one Oxide change: ``deadline`` or the end of our hold if earlier.

        Raises :class:`FenceLost` when the hold is lost or too little of it is left to cover
        one Oxide call.
        """
        ...


class Fence(Protocol):
    #: Whether other controllers may act on the same instances (see :func:`drop_settled`).
    shared: bool

    def hold(self, instance_id: str, *, deadline: float) -> AbstractAsyncContextManager[Hold]:
        """Wait (until ``deadline``) for the instance's fence and hold it for the block."""
        ...


class _Always:
    def change_deadline(self, deadline: float) -> float:
        return deadline


class Unfenced:
    """One controller and a local state directory: the instance is always ours."""

    shared = False

    @contextlib.asynccontextmanager
    async def hold(self, instance_id: str, *, deadline: float) -> AsyncIterator[Hold]:
        yield ALWAYS_HELD


UNFENCED: Fence = Unfenced()
#: A hold that is always valid: what a worker has before its first cycle.
ALWAYS_HELD: Hold = _Always()


async def drop_settled(
    client: OxideClient, instance_id: str, ops: list[PendingOp], *, deadline: float
) -> None:
    """Answer, and remove from ``ops``, what the instance's disks already show as done.

    One listing of the instance's disks: an attach whose disk is there, or a detach whose disk
    is not, was carried out by the controller that held the fence before us.
    """
    if not ops:
        return
    present = {d.id async for d in client.list_instance_disks(instance_id, deadline=deadline)}
    keep = []
    for op in ops:
        if op.done:
            continue
        if (op.disk_id in present) is (op.kind is OpKind.ATTACH):
            op.succeed()
        else:
            keep.append(op)
    ops[:] = keep
