"""Disk operations: list, create, view, delete, and the ``faulted`` test hook.

States: ``creating`` -> ``detached`` (after ``disk_create_seconds``), then attach/detach (see
``ops_attach``). Delete is refused unless the disk is ``detached`` or ``faulted``, with Nexus's
message ``disk cannot be deleted in state "attached"``.

A disk from a snapshot or image is at least as large as its source; a read-only one (v18+)
exactly as large. A local disk (v18+, ``disk_backend: {"type": "local"}``) has 4096-byte blocks
and cannot be snapshotted (see ``ops_snapshots``).

Nexus's POST response (201) is the record made at the start of the create saga, so it says
``creating`` even when, as with ``disk_create_seconds == 0``, a GET right after shows
``detached``. Unsure: a disk from a snapshot that is still ``creating`` is refused here; on a
rack it is not documented what happens.
"""

from __future__ import annotations

from typing import Any

from oxide_sim.core import Core, NameOrId
from oxide_sim.error_responses import (
    already_exists,
    insufficient_capacity,
    invalid_request,
    invalid_value,
    not_found,
)
from oxide_sim.model import DiskRec, new_id, now_iso
from oxide_sim.paged_lists import ListParams, paginate
from oxide_sim.rules import DiskCreate, check_disk_size
from oxide_sim.views import disk_view


def list_disks(core: Core, params: ListParams, project: NameOrId) -> dict[str, Any]:
    with core.lock:
        proj = core.project(project)
        disks = [d for d in core.state.disks.values() if d.project_id == proj.id]
        return paginate(disks, params, lambda d: (d.name, d.id), disk_view)


def create_disk(core: Core, project: NameOrId, req: DiskCreate) -> dict[str, Any]:
    with core.lock:
        proj = core.project(project)
        block_size, source_size = _source(core, proj.id, req)
        if req.size < source_size:
            raise invalid_request(
                f"disk size {req.size} must be greater than or equal to {req.source} size "
                f"{source_size}"
            )
        if req.read_only and req.size != source_size:
            raise invalid_value(
                "size", f"a read-only disk must have the size of its {req.source} ({source_size})"
            )
        check_disk_size(req.size, block_size)
        if any(d.project_id == proj.id and d.name == req.name for d in core.state.disks.values()):
            raise already_exists("disk", req.name)
        if core.provisioned_storage() + req.size > core.cfg.storage_capacity:
            raise insufficient_capacity("Not enough storage")
        ts = now_iso()
        delay = core.cfg.disk_create_seconds
        disk = DiskRec(
            id=new_id(),
            name=req.name,
            description=req.description,
            project_id=proj.id,
            size=req.size,
            block_size=block_size,
            state="creating" if delay > 0 else "detached",
            time_created=ts,
            time_modified=ts,
            snapshot_id=req.snapshot_id,
            image_id=req.image_id,
            read_only=req.read_only,
            disk_type="local" if req.source == "local" else "distributed",
        )
        if core.backing is not None:
            if req.snapshot_id is not None:
                core.backing.create_from_snapshot(disk.id, req.snapshot_id, disk.size)
            elif req.image_id is not None:
                core.backing.create_from_image(disk.id, req.image_id, disk.size)
            else:
                core.backing.create_blank(disk.id, disk.size)
        core.state.disks[disk.id] = disk
        core.commit()
        if delay > 0:
            gen = disk.gen
            core.scheduler.call_later(delay, lambda: _finish_create(core, disk.id, gen))
        # Nexus answers with the record its create saga started from: always ``creating``.
        return {**disk_view(disk), "state": {"state": "creating"}}


def _source(core: Core, project_id: str, req: DiskCreate) -> tuple[int, int]:
    """Block size and size of what the disk starts from (size 0 for a blank or local disk)."""
    if req.source == "snapshot":
        assert req.snapshot_id is not None
        snap = core.state.snapshots.get(req.snapshot_id)
        if snap is None:
            raise not_found("snapshot", "id", req.snapshot_id)
        if snap.project_id != project_id:
            raise invalid_request("snapshot does not belong to this project")
        if snap.state != "ready":
            raise invalid_request(f"snapshot {snap.id} is not ready (state {snap.state})")
        return snap.block_size, snap.size
    if req.source == "image":
        assert req.image_id is not None
        image = core.state.images.get(req.image_id)
        if image is None or image.project_id not in (None, project_id):
            raise not_found("image", "id", req.image_id)
        return image.block_size, image.size
    assert req.block_size is not None
    return req.block_size, 0


def _finish_create(core: Core, disk_id: str, gen: int) -> None:
    with core.lock:
        disk = core.state.disks.get(disk_id)
        if disk is None or disk.gen != gen or disk.state != "creating":
            return
        core.set_disk_state(disk, "detached")
        core.commit()


def get_disk(core: Core, sel: NameOrId, project: NameOrId | None) -> dict[str, Any]:
    with core.lock:
        return disk_view(core.disk(sel, project))


def delete_disk(core: Core, sel: NameOrId, project: NameOrId | None) -> None:
    with core.lock:
        disk = core.disk(sel, project)
        if disk.state not in ("detached", "faulted"):
            raise invalid_request(f'disk cannot be deleted in state "{disk.state}"')
        del core.state.disks[disk.id]
        if core.backing is not None:
            core.backing.delete_disk(disk.id)
        core.commit()


def fault_disk(core: Core, disk_id: str) -> dict[str, Any]:
    """Test hook: the disk becomes ``faulted`` and loses any attachment."""
    with core.lock:
        disk = core.state.disks.get(disk_id)
        if disk is None:
            raise not_found("disk", "id", disk_id)
        core.set_disk_state(disk, "faulted")
        core.commit()
        return disk_view(disk)
