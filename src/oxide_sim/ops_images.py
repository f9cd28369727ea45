"""Image operations: list, create from a snapshot, view, delete.

An image created with ``project`` is a project image, one created without it a silo image
(visible from every project). Its blocks are the snapshot's: with backing files the image file
is a copy of the snapshot's, so a disk made from it carries the snapshot's data.

Selectors follow Nexus: an image given by id stands alone; by name it is looked up among the
project's images when ``project`` is given and among the silo images otherwise.

Unsure: whether Nexus counts images in the silo's provisioned storage; the simulator does not.
"""

from __future__ import annotations

from typing import Any

from oxide_sim.core import Core, NameOrId
from oxide_sim.error_responses import already_exists, invalid_request, not_found
from oxide_sim.model import ImageRec, new_id, now_iso
from oxide_sim.paged_lists import ListParams, paginate
from oxide_sim.rules import ImageCreate
from oxide_sim.views import image_view


def _scope(core: Core, project: NameOrId | None) -> str | None:
    """The project id a request is scoped to; None for the silo."""
    return None if project is None else core.project(project).id


def list_images(core: Core, params: ListParams, project: NameOrId | None) -> dict[str, Any]:
    with core.lock:
        scope = _scope(core, project)
        items = [m for m in core.state.images.values() if m.project_id == scope]
        return paginate(items, params, lambda m: (m.name, m.id), image_view)


def create_image(core: Core, project: NameOrId | None, req: ImageCreate) -> dict[str, Any]:
    with core.lock:
        scope = _scope(core, project)
        snap = core.state.snapshots.get(req.snapshot_id)
        if snap is None:
            raise not_found("snapshot", "id", req.snapshot_id)
        if scope is not None and snap.project_id != scope:
            raise invalid_request("snapshot does not belong to this project")
        if snap.state != "ready":
            raise invalid_request(f"snapshot {snap.id} is not ready (state {snap.state})")
        if any(m.project_id == scope and m.name == req.name for m in core.state.images.values()):
            raise already_exists("image", req.name)
        ts = now_iso()
        image = ImageRec(
            id=new_id(),
            name=req.name,
            description=req.description,
            project_id=scope,
            size=snap.size,
            block_size=snap.block_size,
            os=req.os,
            version=req.version,
            time_created=ts,
            time_modified=ts,
            snapshot_id=snap.id,
        )
        if core.backing is not None:
            core.backing.image_from_snapshot(image.id, snap.id, snap.size)
        core.state.images[image.id] = image
        core.commit()
        return image_view(image)


def find_image(core: Core, sel: NameOrId, project: NameOrId | None) -> ImageRec:
    """The image ``sel`` names (the caller holds the lock)."""
    kind, value = sel
    if kind == "id":
        if project is not None:
            raise invalid_request("when providing image as an ID project should not be specified")
        found = core.state.images.get(value)
    else:
        scope = _scope(core, project)
        found = next(
            (m for m in core.state.images.values() if m.project_id == scope and m.name == value),
            None,
        )
    if found is None:
        raise not_found("image", kind, value)
    return found


def get_image(core: Core, sel: NameOrId, project: NameOrId | None) -> dict[str, Any]:
    with core.lock:
        return image_view(find_image(core, sel, project))


def delete_image(core: Core, sel: NameOrId, project: NameOrId | None) -> None:
    with core.lock:
        image = find_image(core, sel, project)
        del core.state.images[image.id]
        if core.backing is not None:
            core.backing.delete_image(image.id)
        core.commit()
