"""Volumes as Oxide disks: create (blank, from a snapshot, as a clone), delete, look up, list.

This module holds the rules; the CSI servicer only validates requests and builds responses.

Idempotency works by name, not by memory: a CSI volume name maps to one deterministic disk name
(:mod:`.naming`), calls for one name are serialised in this process (:class:`KeyedLocks`), and
each call first looks the disk up. So a retry after a crash, a timeout or a lost answer finds
the disk the first attempt made and compares it with the request: compatible means the same
volume, incompatible means ALREADY_EXISTS. Nothing is kept in memory that a restart could lose.

A clone goes through a temporary snapshot of the source (Oxide creates disks from snapshots and
images only). The snapshot's name derives from the target volume's name, so a retried clone
reuses it, and it is deleted once the new disk exists -- also on a retry that finds the disk
already made.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from oxide_csi.controller import naming
from oxide_csi.controller.attach.released import Deferred, LedgerView
from oxide_csi.controller.create_race import again_if_taken
from oxide_csi.controller.metadata import (
    Source,
    VolumeMeta,
    clone_description,
    is_clone_description,
)
from oxide_csi.controller.parameters import fits, round_capacity
from oxide_csi.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    OutOfRange,
)
from oxide_csi.inflight import KeyedLocks
from oxide_csi.oxide import Disk, Image, OxideClient, Snapshot, Utilization, api_errors, is_uuid
from oxide_csi.volume_contract import serial_for

#: Disk states in which the disk belongs to an instance.
ATTACHED_STATES = frozenset({"attaching", "attached", "detaching"})
#: Disk states that mean the disk is broken; reported as an abnormal volume condition.
FAULTED_STATES = frozenset({"faulted"})


@dataclass(frozen=True)
class VolumeRequest:
    """A validated CreateVolume: the CSI name, capacity bounds and what the disk starts from."""

    name: str
    required_bytes: int
    limit_bytes: int
    block_size: int
    fs_type: str
    source: str = Source.BLANK
    source_id: str = ""
    pvc: str = ""  # namespace/name, kept in the description for Events
    #: An Oxide read-only disk (with a snapshot or image source only).
    read_only: bool = False
    #: A local (sled-local) disk: blank, 4096-byte blocks, no snapshots.
    local: bool = False


@dataclass(frozen=True)
class Origin:
    """What a new disk is made from, and its size."""

    size: int
    snapshot_id: str | None = None
    image_id: str | None = None


@dataclass(frozen=True)
class Volume:
    """A disk this plugin manages, with the metadata kept in its description."""

    disk: Disk
    meta: VolumeMeta

    @property
    def serial(self) -> str:
        return serial_for(self.disk.name)

    @property
    def attached_to(self) -> str | None:
        return self.disk.instance_id if self.disk.state in ATTACHED_STATES else None

    @property
    def faulted(self) -> bool:
        return self.disk.state in FAULTED_STATES

    @property
    def static(self) -> bool:
        """A disk this plugin did not create, used through a static PersistentVolume."""
        return self.meta.source == Source.STATIC

    @property
    def local(self) -> bool:
        return self.disk.disk_type == "local"


def managed(disk: Disk) -> Volume | None:
    """The volume view of ``disk``, or None for disks this plugin did not create."""
    meta = VolumeMeta.decode(disk.description)
    if meta is None or not naming.is_managed_disk(disk.name):
        return None
    return Volume(disk=disk, meta=meta)


def static(disk: Disk) -> Volume:
    """Any disk as a static volume: published and staged, never formatted nor deleted."""
    return managed(disk) or Volume(disk=disk, meta=VolumeMeta(csi_name="", source=Source.STATIC))


class VolumeManager:
    """The controller's volume rules over one Oxide client (one project).

    ``deferred``: with released disks, a disk whose deletion is owed no longer exists for CSI
    (NOT_FOUND, not listed, its name not reusable until it is gone) and a released disk is
    published nowhere.
    """

    def __init__(self, client: OxideClient, deferred: Deferred | None = None) -> None:
        self._client = client
        self._locks = KeyedLocks()
        self.deferred = deferred

    async def create(self, req: VolumeRequest, *, deadline: float) -> Volume:
        """Create the volume or return the compatible one an earlier attempt made."""
        return await again_if_taken(lambda: self._create_once(req, deadline))

    async def _create_once(self, req: VolumeRequest, deadline: float) -> Volume:
        name = naming.disk_name(req.name)
        async with self._locks.hold(name):
            existing = await self._find_by_name(name, deadline)
            if existing is not None and existing.id in (await self._view()).owed:
                raise Aborted(
                    f"the earlier volume {req.name!r} is still being deleted (its disk waits "
                    "for its instance's next cycle); retry later"
                )
            if existing is not None:
                volume = await self._wait_usable(self._compatible(existing, req), deadline)
                await self._drop_clone_snapshot(req, deadline)
                return volume
            await self._check_rack_has(req, deadline)
            origin = await self._resolve_source(req, deadline)
            meta = VolumeMeta(
                csi_name=req.name,
                fs_type=req.fs_type,
                source=req.source,
                source_id=req.source_id,
                pvc=req.pvc,
            )
            disk = await self._client.create_disk(
                name,
                size=origin.size,
                description=meta.encode(),
                block_size=req.block_size,
                snapshot_id=origin.snapshot_id,
                image_id=origin.image_id,
                read_only=req.read_only,
                local=req.local,
                deadline=deadline,
            )
            volume = await self._wait_usable(Volume(disk=disk, meta=meta), deadline)
            await self._drop_clone_snapshot(req, deadline)
            return volume

    async def delete(self, volume_id: str, *, deadline: float) -> None:
        """Delete a detached volume; an unknown id is success (the volume is gone).

        A disk this plugin did not create (a static volume's, a boot disk) is never deleted:
        FAILED_PRECONDITION, from :meth:`find`.
        """
        async with self._locks.hold(volume_id):
            volume = await self.find(volume_id, deadline=deadline)
            if volume is None:
                return
            if volume.attached_to is not None:
                if self.deferred is not None and await self.deferred.owe_delete(volume.disk):
                    return  # released: deleted after its detach (owed, see released.py)
                raise FailedPrecondition(
                    f"volume {volume_id} is {volume.disk.state} on instance "
                    f"{volume.disk.instance_id}; unpublish it first"
                )
            with contextlib.suppress(api_errors.OxideNotFound):
                await self._client.delete_disk(volume_id, deadline=deadline)

    async def find(
        self, volume_id: str, *, deadline: float, static_ok: bool = False
    ) -> Volume | None:
        """The volume with this id, or None when no such disk exists.

        A disk that exists but was not made by this plugin (a boot disk, a disk an operator
        made) is never ours to delete or report: FAILED_PRECONDITION, not NOT_FOUND, so
        nobody concludes it is gone. With ``static_ok`` (publish, unpublish, validate: what a
        static PersistentVolume needs) such a disk is returned as a static volume.
        """
        if not is_uuid(volume_id):
            return None
        try:
            disk = await self._client.get_disk(volume_id, deadline=deadline)
        except api_errors.OxideNotFound:
            return None
        if disk.id in (await self._view()).owed:
            return None  # deleted as far as CSI knows; the disk goes after its detach
        if static_ok:
            return static(disk)
        volume = managed(disk)
        if volume is None:
            raise FailedPrecondition(
                f"disk {disk.name} ({volume_id}) was not created by this plugin; it is never "
                "deleted, snapshotted or cloned through Kubernetes (a static volume's disk "
                "stays the operator's)"
            )
        return volume

    async def get(self, volume_id: str, *, deadline: float, static_ok: bool = False) -> Volume:
        volume = await self.find(volume_id, deadline=deadline, static_ok=static_ok)
        if volume is None:
            raise NotFound(f"volume {volume_id} does not exist")
        return volume

    async def capacity(self, *, deadline: float) -> Utilization:
        """The silo's storage figures (GetCapacity)."""
        return await self._client.utilization(deadline=deadline)

    async def node_ids(self, volumes: Sequence[Volume], *, deadline: float) -> dict[str, list[str]]:
        """Per volume id, the node ids it is published to: its instance's id *and* name.

        A node's id is whatever its plugin reports: the instance UUID (read from the guest's
        product_uuid) or the Kubernetes node name, which is commonly the instance's name. The
        external-attacher looks for its own node id in this list and re-attaches when it is
        missing, so both spellings of the one instance are listed. One instance listing serves
        all volumes (ListVolumes), one lookup serves a single volume.
        """
        released = (await self._view()).released
        attached = {v.disk.id: v.attached_to for v in volumes if v.attached_to}
        attached = {vid: iid for vid, iid in attached.items() if vid not in released}
        if not attached:
            return {}
        names: dict[str, str] = {}
        if len(attached) == 1:
            (instance_id,) = attached.values()
            with contextlib.suppress(api_errors.OxideNotFound):
                instance = await self._client.get_instance(instance_id, deadline=deadline)
                names[instance.id] = instance.name
        else:
            async for instance in self._client.list_instances(deadline=deadline):
                names[instance.id] = instance.name
        return {vid: [iid, names[iid]] if iid in names else [iid] for vid, iid in attached.items()}

    async def list(self, *, deadline: float) -> AsyncIterator[Volume]:
        """Every managed volume of the project, in the API's order (by name)."""
        owed = (await self._view()).owed
        async for disk in self._client.list_disks(deadline=deadline):
            volume = managed(disk)
            if volume is not None and disk.id not in owed:
                yield volume

    # ---- helpers -------------------------------------------------------------------------

    async def _view(self) -> LedgerView:
        return await self.deferred.view() if self.deferred is not None else LedgerView()

    async def _find_by_name(self, name: str, deadline: float) -> Disk | None:
        try:
            return await self._client.get_disk(name, deadline=deadline)
        except api_errors.OxideNotFound:
            return None

    def _compatible(self, disk: Disk, req: VolumeRequest) -> Volume:
        volume = managed(disk)
        if volume is None or volume.meta.csi_name != req.name:
            raise AlreadyExists(
                f"Oxide disk {disk.name} exists and does not belong to volume {req.name!r}"
            )
        wrong = []
        if not fits(disk.size, req.required_bytes, req.limit_bytes):
            wrong.append(f"size {disk.size}")
        if (volume.meta.source, volume.meta.source_id) != (req.source, req.source_id):
            wrong.append(f"content source {volume.meta.source} {volume.meta.source_id}".strip())
        if req.source == Source.BLANK and disk.block_size != req.block_size:
            wrong.append(f"block size {disk.block_size}")
        if volume.meta.fs_type != req.fs_type:
            wrong.append(f"fsType {volume.meta.fs_type or '(default)'}")
        if disk.read_only != req.read_only:
            wrong.append("read-only flag")
        if volume.local != req.local:
            wrong.append(f"disk type {disk.disk_type}")
        if wrong:
            raise AlreadyExists(f"volume {req.name!r} exists with a different {', '.join(wrong)}")
        return volume

    async def _check_rack_has(self, req: VolumeRequest, deadline: float) -> None:
        """Read-only and local disks exist only on racks of release v18 or later."""
        if not (req.read_only or req.local):
            return
        if not (await self._client.generation(deadline=deadline)).disk_backend:
            what = "read-only" if req.read_only else "local"
            raise InvalidArgument(
                f"{what} disks need Oxide release v18 or later; this rack serves the older, "
                "unversioned API (release v17 or older)"
            )

    async def _resolve_source(self, req: VolumeRequest, deadline: float) -> Origin:
        """What the disk starts from and its size.

        The size is settled before a clone's temporary snapshot is taken, so a request that
        cannot fit (OUT_OF_RANGE) leaves nothing behind. A read-only disk has exactly its
        source's size, as Oxide requires.
        """
        if req.source == Source.SNAPSHOT:
            snap = await self._source_snapshot(req.source_id, deadline)
            return Origin(self._size(req, snap.size), snapshot_id=snap.id)
        if req.source == Source.IMAGE:
            image = await self._source_image(req.source_id, deadline)
            return Origin(self._size(req, image.size), image_id=image.id)
        if req.source == Source.VOLUME:
            source = await self.find(req.source_id, deadline=deadline)
            if source is None:
                raise NotFound(f"source volume {req.source_id} does not exist")
            if source.local:
                raise FailedPrecondition(
                    f"volume {req.source_id} is a local disk: Oxide cannot snapshot local "
                    "disks, so it cannot be cloned"
                )
            size = self._size(req, source.disk.size)
            snap = await self._clone_snapshot(req.name, source.disk.id, deadline)
            return Origin(size, snapshot_id=snap.id)
        return Origin(round_capacity(req.required_bytes, req.limit_bytes))

    @staticmethod
    def _size(req: VolumeRequest, source_size: int) -> int:
        if not req.read_only:
            return round_capacity(req.required_bytes, req.limit_bytes, floor=source_size)
        if not fits(source_size, req.required_bytes, req.limit_bytes):
            raise OutOfRange(
                f"a read-only disk has its source's size ({source_size} bytes), which is "
                "outside the requested capacity range"
            )
        return source_size

    async def _source_image(self, image: str, deadline: float) -> Image:
        try:
            return await self._client.get_image(image, deadline=deadline)
        except api_errors.OxideNotFound:
            raise NotFound(
                f"image {image!r} is neither an image of the project nor of the silo"
            ) from None

    async def _clone_snapshot(self, target: str, source_disk_id: str, deadline: float) -> Snapshot:
        """The ready temporary snapshot of the source that a clone into ``target`` starts from.

        An earlier attempt (timed out, or refused later) may have left it: one of the same disk
        is reused; one of another disk (the same target name asked earlier with another source)
        is ours to replace -- the name space ``clone-<hash of target>`` belongs to this clone.
        """
        name = naming.clone_snapshot_name(target)
        try:
            snap = await self._client.get_snapshot(name, deadline=deadline)
        except api_errors.OxideNotFound:
            snap = None
        if snap is not None and not is_clone_description(snap.description):
            raise FailedPrecondition(
                f"Oxide snapshot {name} is in the way of cloning into {target!r} and was not "
                "made by this plugin; rename or delete it"
            )
        if snap is not None and (
            snap.disk_id.lower() != source_disk_id.lower() or snap.state in FAULTED_STATES
        ):
            # Of another source, or faulted (it will never become ready): replace it.
            with contextlib.suppress(api_errors.OxideNotFound):
                await self._client.delete_snapshot(snap.id, deadline=deadline)
            snap = None
        if snap is None:
            snap = await self._client.create_snapshot(
                name,
                disk=source_disk_id,
                description=clone_description(source_disk_id, target),
                deadline=deadline,
            )
        if snap.state != "ready":
            snap = await self._client.wait_snapshot(snap.id, deadline=deadline)
        return snap

    async def _source_snapshot(self, snapshot_id: str, deadline: float) -> Snapshot:
        missing = NotFound(f"source snapshot {snapshot_id} does not exist")
        if not is_uuid(snapshot_id):
            raise missing
        try:
            snap = await self._client.get_snapshot(snapshot_id, deadline=deadline)
        except api_errors.OxideNotFound:
            raise missing from None
        if snap.state != "ready":
            snap = await self._client.wait_snapshot(snap.id, deadline=deadline)
        return snap

    async def _wait_usable(self, volume: Volume, deadline: float) -> Volume:
        """CreateVolume returns only once the disk can be attached (``detached``); a faulted
        disk is never an answer, whether found faulted or seen to fault while waiting."""
        if volume.faulted:
            raise FailedPrecondition(
                f"Oxide reports disk {volume.disk.name} of volume {volume.meta.csi_name!r} as "
                f"{volume.disk.state}; it cannot be used (delete the claim to remove it)"
            )
        if volume.disk.state != "creating":
            return volume
        disk = await self._client.wait_disk(
            volume.disk.id, want=frozenset({"detached"}), deadline=deadline
        )
        return Volume(disk=disk, meta=volume.meta)

    async def _drop_clone_snapshot(self, req: VolumeRequest, deadline: float) -> None:
        if req.source != Source.VOLUME:
            return
        with contextlib.suppress(api_errors.OxideNotFound):
            await self._client.delete_snapshot(
                naming.clone_snapshot_name(req.name), deadline=deadline
            )
