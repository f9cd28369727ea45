"""Leftover work of a crashed cycle must never undo a later decision.

A record's operations are the past: what a controller that died mid-cycle was asked to do.
Recovery finishes them (the CO will ask again and then finds them done), but a newer CSI call
for the same disk wins. The claim on the disk (a caller's live operation) makes recovery skip
the leftover; what needs care is the newer call that would otherwise answer at once, before
the leftover is applied:

* ControllerUnpublishVolume for a disk with a leftover attach: the disk is not attached (yet),
  so "nothing to do" would be the answer, and recovery would then attach it -- for ever, since
  nobody detaches a disk the CO believes detached, and DeleteVolume fails on it;
* ControllerPublishVolume for a disk with a leftover detach: it is still attached, so
  "already attached" would be the answer, and recovery would then detach it under the pod.

Such a call becomes a *settling* operation: it claims the disk (so recovery skips the leftover)
and joins the instance's cycle. If, when the worker looks, the disk already is where the call
wants it, the operation succeeds without a power cycle; otherwise it is applied like any other
(a leftover applied between the caller's read and its claim is undone by it).

Ordering: the caller reads the disk before it looks for the record. A leftover applied after
that read is applied by a cycle that keeps its record until the instance has started again,
seconds later; so either the caller finds the record, or the disk it read already showed the
leftover applied.
"""

from __future__ import annotations

from oxide_csi.controller.attach.ops import PendingOp
from oxide_csi.controller.attach.records import AttachRecordStore, OpKind, OpRecord
from oxide_csi.oxide import OxideClient, api_errors


async def leftover(store: AttachRecordStore, instance_id: str, disk_id: str) -> OpKind | None:
    """The last leftover operation on ``disk_id`` in ``instance_id``'s record, if any."""
    record = await store.load(instance_id)
    if record is None:
        return None
    found = [op.kind for op in record.ops if op.disk_id == disk_id]
    return found[-1] if found else None


async def leftover_attach_target(store: AttachRecordStore, disk_id: str) -> str | None:
    """The instance a leftover attach of ``disk_id`` would attach it to, if any record has one
    (for an unpublish that names no node: "from wherever it is" includes where it would be)."""
    for record in await store.load_all():
        found = [op.kind for op in record.ops if op.disk_id == disk_id]
        if found and found[-1] is OpKind.ATTACH:
            return record.instance_id
    return None


async def already_done(client: OxideClient, op: PendingOp, deadline: float) -> bool:
    """Whether the disk already is where the settling ``op`` wants it (no cycle needed)."""
    try:
        disk = await client.get_disk(op.disk_id, deadline=deadline)
    except api_errors.OxideNotFound:
        return op.kind is OpKind.DETACH
    on_it = disk.state == "attached" and disk.instance_id == op.instance_id
    if op.kind is OpKind.ATTACH:
        return on_it
    return disk.instance_id != op.instance_id


def superseded(
    leftovers: tuple[OpRecord, ...], current: tuple[OpRecord, ...]
) -> tuple[OpRecord, ...]:
    """The record's operations: leftovers on disks no current operation names, then the
    current ones -- a caller's newer wish replaces the leftover for its disk, so a replay
    after another crash ends where the last call put the disk."""
    mine = {op.disk_id for op in current}
    kept = tuple(op for op in leftovers if op.disk_id not in mine)
    return tuple(dict.fromkeys((*kept, *current)))
