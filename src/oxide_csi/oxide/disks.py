"""Disk, snapshot and image endpoints.

Creates are the delicate part: a POST that failed ambiguously may still have made the resource,
so it is never simply repeated. See ``DiskOps.create_disk`` for how that is resolved.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal

from oxide_csi.oxide import api_errors
from oxide_csi.oxide.base import ClientBase
from oxide_csi.oxide.generation import Generation
from oxide_csi.oxide.models import Disk, Image, Snapshot
from oxide_csi.oxide.retry import Safety
from oxide_csi.oxide.selectors import NameOrId, is_uuid, normalize
from oxide_csi.oxide.transport import Resolved

DISK = "/v1/disks/{disk}"
DISKS = "/v1/disks"
SNAPSHOT = "/v1/snapshots/{snapshot}"
SNAPSHOTS = "/v1/snapshots"
IMAGES = "/v1/images"
IMAGE = "/v1/images/{image}"


def _different(kind: str, name: str, what: list[str]) -> api_errors.OxideAlreadyExists:
    return api_errors.OxideAlreadyExists(
        f"{kind} {name!r} already exists with a different {', '.join(what)}",
        status=400,
        error_code="ObjectAlreadyExists",
    )


class DiskOps(ClientBase):
    """Endpoints under /v1/disks, /v1/snapshots and /v1/images."""

    # ---- disks ---------------------------------------------------------------------------

    async def list_disks(self, *, deadline: float | None = None) -> AsyncIterator[Disk]:
        """Every disk of the project (all pages)."""
        query: dict[str, str | int] = {"project": self._cfg.project}
        async for raw in self._list(DISKS, DISKS, query, deadline):
            yield Disk.from_api(raw)

    async def get_disk(self, disk: NameOrId, *, deadline: float | None = None) -> Disk:
        return Disk.from_api(await self._view(DISK, "disk", disk, deadline))

    async def create_disk(
        self,
        name: str,
        *,
        size: int,
        description: str = "",
        block_size: int = 4096,
        snapshot_id: str | None = None,
        image_id: str | None = None,
        read_only: bool = False,
        local: bool = False,
        deadline: float | None = None,
    ) -> Disk:
        """Create a disk: distributed (blank, or from a snapshot or an image), or local.

        The body takes the shape of the rack's generation (:mod:`.generation`): ``disk_source``
        at the top level before v18, ``disk_backend`` since. Read-only and local disks exist
        only since v18; asking an older rack for one raises ``InvalidRequest`` unsent.

        Retry semantics -- why a failed create is not simply repeated: after a 500, a 502, a
        504, a dropped connection or a read timeout we cannot know whether the rack created
        the disk. Repeating the POST would then fail with ``ObjectAlreadyExists`` for a disk
        that is in fact ours. So after such a failure we look the disk up by name: if it
        exists with the size, block size, source, read-only flag and description we asked
        for, that is our disk and we return it; if it exists otherwise we raise
        ``OxideAlreadyExists``; if it does not exist the create did not happen and we repeat it.
        The POST is repeated without a lookup only after failures that prove nothing happened
        (connection refused, 429) or that normally mean so (503); an ``ObjectAlreadyExists``
        on any repeated attempt is then resolved by the same lookup. A disk that existed
        *before* our call with exactly the requested properties is returned too -- for a
        named, idempotent create that is the right answer anyway.
        """
        shape = await self.generation(deadline=deadline)
        body = {
            "name": normalize(name),
            "description": description,
            "size": size,
            **_source_fields(shape, block_size, snapshot_id, image_id, read_only, local),
        }

        async def resolve(_: api_errors.OxideError) -> Resolved | None:
            try:
                raw = await self._view(DISK, "disk", name, deadline)
            except api_errors.OxideNotFound:
                return None
            found = Disk.from_api(raw)
            wrong = []
            if found.size != size:
                wrong.append("size")
            if _norm(found.snapshot_id) != _norm(snapshot_id) or _norm(found.image_id) != _norm(
                image_id
            ):
                wrong.append("source")
            if snapshot_id is None and image_id is None and found.block_size != block_size:
                wrong.append("block size")
            if (found.disk_type == "local") != local:
                wrong.append("disk type")
            if found.read_only != read_only:
                wrong.append("read-only flag")
            if found.description != description:
                wrong.append("description")
            if wrong:
                raise _different("disk", name, wrong)
            return Resolved(raw)

        raw = await self._t.request(
            "POST",
            DISKS,
            DISKS,
            query={"project": self._cfg.project},
            body=body,
            deadline=deadline,
            safety=Safety.CREATE,
            resolve=resolve,
        )
        return Disk.from_api(raw)

    async def delete_disk(self, disk: NameOrId, *, deadline: float | None = None) -> None:
        """Delete a detached disk. A repeated attempt that finds it gone counts as success."""
        await self._t.request(
            "DELETE",
            DISK,
            self._path(DISK, disk=disk),
            query=self._scoped(disk),
            deadline=deadline,
            resolve=_gone,
        )

    # ---- snapshots -----------------------------------------------------------------------

    async def list_snapshots(self, *, deadline: float | None = None) -> AsyncIterator[Snapshot]:
        query: dict[str, str | int] = {"project": self._cfg.project}
        async for raw in self._list(SNAPSHOTS, SNAPSHOTS, query, deadline):
            yield Snapshot.from_api(raw)

    async def get_snapshot(self, snapshot: NameOrId, *, deadline: float | None = None) -> Snapshot:
        return Snapshot.from_api(await self._view(SNAPSHOT, "snapshot", snapshot, deadline))

    async def create_snapshot(
        self,
        name: str,
        *,
        disk: NameOrId,
        description: str = "",
        deadline: float | None = None,
    ) -> Snapshot:
        """Snapshot ``disk`` (name in our project, or id).

        Same retry semantics as ``create_disk``: an ambiguous failure is resolved by looking
        the snapshot up by name; it is ours if it is of the same disk with the same
        description.
        """
        body = {"name": normalize(name), "description": description, "disk": normalize(disk)}

        async def resolve(_: api_errors.OxideError) -> Resolved | None:
            try:
                raw = await self._view(SNAPSHOT, "snapshot", name, deadline)
            except api_errors.OxideNotFound:
                return None
            found = Snapshot.from_api(raw)
            disk_id = (
                str(disk) if is_uuid(disk) else (await self.get_disk(disk, deadline=deadline)).id
            )
            wrong = []
            if _norm(found.disk_id) != _norm(disk_id):
                wrong.append("source disk")
            if found.description != description:
                wrong.append("description")
            if wrong:
                raise _different("snapshot", name, wrong)
            return Resolved(raw)

        raw = await self._t.request(
            "POST",
            SNAPSHOTS,
            SNAPSHOTS,
            query={"project": self._cfg.project},
            body=body,
            deadline=deadline,
            safety=Safety.CREATE,
            resolve=resolve,
        )
        return Snapshot.from_api(raw)

    async def delete_snapshot(self, snapshot: NameOrId, *, deadline: float | None = None) -> None:
        await self._t.request(
            "DELETE",
            SNAPSHOT,
            self._path(SNAPSHOT, snapshot=snapshot),
            query=self._scoped(snapshot),
            deadline=deadline,
            resolve=_gone,
        )

    # ---- images --------------------------------------------------------------------------

    async def get_image(self, image: NameOrId, *, deadline: float | None = None) -> Image:
        """An image by UUID, or by name: the project's image of that name, else the silo's.

        A name without ``project`` selects a silo image in Nexus, so the fallback is the same
        request without it.
        """
        path = self._path(IMAGE, image=image)
        if is_uuid(image):
            return Image.from_api(await self._t.request("GET", IMAGE, path, deadline=deadline))
        try:
            raw = await self._t.request(
                "GET", IMAGE, path, query={"project": self._cfg.project}, deadline=deadline
            )
        except api_errors.OxideNotFound:
            raw = await self._t.request("GET", IMAGE, path, deadline=deadline)
        return Image.from_api(raw)

    async def list_images(
        self,
        *,
        scope: Literal["project", "silo"] = "project",
        deadline: float | None = None,
    ) -> AsyncIterator[Image]:
        """Images of our project, or (``scope="silo"``) the silo-wide ones."""
        query: dict[str, str | int] = {"project": self._cfg.project} if scope == "project" else {}
        async for raw in self._list(IMAGES, IMAGES, query, deadline):
            yield Image.from_api(raw)


def _source_fields(
    shape: Generation,
    block_size: int,
    snapshot_id: str | None,
    image_id: str | None,
    read_only: bool,
    local: bool,
) -> dict[str, Any]:
    """The part of a DiskCreate body that says what the disk is made of, in the rack's shape."""
    if snapshot_id is not None and image_id is not None:
        raise api_errors.OxideInvalidRequest(
            "a disk has one source: snapshot_id or image_id, not both"
        )
    if (read_only or local) and not shape.disk_backend:
        what = "read-only" if read_only else "local"
        raise api_errors.OxideInvalidRequest(f"{what} disks need Oxide release v18 or later")
    if local:
        if snapshot_id is not None or image_id is not None or read_only:
            raise api_errors.OxideInvalidRequest("a local disk is always blank and writable")
        return {"disk_backend": {"type": "local"}}
    source: dict[str, Any]
    if snapshot_id is not None:
        source = {"type": "snapshot", "snapshot_id": snapshot_id}
    elif image_id is not None:
        source = {"type": "image", "image_id": image_id}
    else:
        source = {"type": "blank", "block_size": block_size}
    if read_only:
        if source["type"] == "blank":
            raise api_errors.OxideInvalidRequest("a blank disk cannot be read-only")
        source["read_only"] = True
    if not shape.disk_backend:
        return {"disk_source": source}
    return {"disk_backend": {"type": "distributed", "disk_source": source}}


def _norm(uuid_text: str | None) -> str:
    return (uuid_text or "").lower()


async def _gone(error: api_errors.OxideError) -> Resolved | None:
    """For a repeated delete: a 404 after an earlier, possibly applied attempt means done."""
    return Resolved(None) if isinstance(error, api_errors.OxideNotFound) else None
