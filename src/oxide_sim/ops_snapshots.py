"""Snapshot operations: list, create, view, delete.

A snapshot can be taken of an ``attached`` or ``detached`` disk (a disk on its way to one of
those is 503, try again; any other state 400); it is ``creating`` for
``snapshot_create_seconds`` and then ``ready``. Its size (and block size, kept internally) is
the disk's, so a disk made from it must be at least that large.

A local disk (sled-local NVMe, v18+) cannot be snapshotted.

Unsure: the exact messages Nexus uses for a snapshot of a disk in another state and for
deleting a snapshot that is still ``creating``; the simulator refuses both with 400
``InvalidRequest``.
"""

from __future__ import annotations

from typing import Any

from oxide_sim.core import Core, NameOrId
from oxide_sim.error_responses import (
    already_exists,
    insufficient_capacity,
    invalid_request,
    not_found,
    service_unavailable,
)
from oxide_sim.model import SnapshotRec, new_id, now_iso
from oxide_sim.paged_lists import ListParams, paginate
from oxide_sim.rules import SnapshotCreate
from oxide_sim.views import snapshot_view

#: Disk states that pass by themselves: a snapshot is refused with 503 (retry), as Nexus does
#: for a disk whose volume is busy, rather than with a 400 that says "never".
_TRANSIENT_DISK_STATES = frozenset(
    {"creating", "attaching", "detaching", "finalizing", "importing_from_url",
     "importing_from_bulk_writes", "maintenance"}
)  # fmt: skip


def list_snapshots(core: Core, params: ListParams, project: NameOrId) -> dict[str, Any]:
    with core.lock:
        proj = core.project(project)
        items = [s for s in core.state.snapshots.values() if s.project_id == proj.id]
        return paginate(items, params, lambda s: (s.name, s.id), snapshot_view)


def create_snapshot(core: Core, project: NameOrId, req: SnapshotCreate) -> dict[str, Any]:
    with core.lock:
        proj = core.project(project)
        disk_project: NameOrId | None = ("id", proj.id) if req.disk[0] == "name" else None
        disk = core.disk(req.disk, disk_project)
        if disk.disk_type == "local":
            raise invalid_request(f'cannot snapshot disk "{disk.name}": it is a local disk')
        if disk.state in _TRANSIENT_DISK_STATES:
            raise service_unavailable(
                f'cannot snapshot disk "{disk.name}" while it is {disk.state}; try again'
            )
        if disk.state not in ("attached", "detached"):
            raise invalid_request(f'cannot snapshot disk "{disk.name}" in state {disk.state}')
        if any(
            s.project_id == proj.id and s.name == req.name for s in core.state.snapshots.values()
        ):
            raise already_exists("snapshot", req.name)
        if core.provisioned_storage() + disk.size > core.cfg.storage_capacity:
            raise insufficient_capacity("Not enough storage")
        ts = now_iso()
        delay = core.cfg.snapshot_create_seconds
        snap = SnapshotRec(
            id=new_id(),
            name=req.name,
            description=req.description,
            project_id=proj.id,
            disk_id=disk.id,
            size=disk.size,
            block_size=disk.block_size,
            state="creating" if delay > 0 else "ready",
            time_created=ts,
            time_modified=ts,
        )
        if core.backing is not None:
            core.backing.snapshot(disk.id, snap.id, disk.size)
        core.state.snapshots[snap.id] = snap
        core.commit()
        if delay > 0:
            gen = snap.gen
            core.scheduler.call_later(delay, lambda: _finish_create(core, snap.id, gen))
        return snapshot_view(snap)


def _finish_create(core: Core, snapshot_id: str, gen: int) -> None:
    with core.lock:
        snap = core.state.snapshots.get(snapshot_id)
        if snap is None or snap.gen != gen or snap.state != "creating":
            return
        snap.state = "ready"
        snap.gen += 1
        snap.time_modified = now_iso()
        core.commit()


def fault_snapshot(core: Core, snapshot_id: str) -> dict[str, Any]:
    """Test hook: the snapshot becomes ``faulted`` (it will never be ``ready``)."""
    with core.lock:
        snap = core.state.snapshots.get(snapshot_id)
        if snap is None:
            raise not_found("snapshot", "id", snapshot_id)
        snap.state = "faulted"
        snap.gen += 1
        snap.time_modified = now_iso()
        core.commit()
        return snapshot_view(snap)


def get_snapshot(core: Core, sel: NameOrId, project: NameOrId | None) -> dict[str, Any]:
    with core.lock:
        return snapshot_view(core.snapshot(sel, project))


def delete_snapshot(core: Core, sel: NameOrId, project: NameOrId | None) -> None:
    with core.lock:
        snap = core.snapshot(sel, project)
        if snap.state == "creating":
            raise invalid_request(f'snapshot cannot be deleted in state "{snap.state}"')
        del core.state.snapshots[snap.id]
        if core.backing is not None:
            core.backing.delete_snapshot(snap.id)
        core.commit()
