"""CSI snapshots as Oxide snapshots: create by name (idempotent), delete, look up, list.

Like volumes, a snapshot is found again by its deterministic name (:func:`naming.snapshot_name`)
and its description records the CSI name, so a retried CreateSnapshot returns the snapshot the
first attempt made, and the same name for a different source volume is ALREADY_EXISTS.

CreateSnapshot does not wait for the snapshot to become ``ready``: the CSI specification lets it
return ``ready_to_use = false`` and the CO polls by repeating the call, which is cheaper than
holding an RPC open while Crucible copies blocks.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

from oxide_csi.controller import naming
from oxide_csi.controller.create_race import again_if_taken
from oxide_csi.controller.metadata import mark, unmark
from oxide_csi.controller.volumes import FAULTED_STATES, VolumeManager
from oxide_csi.errors import AlreadyExists, FailedPrecondition, NotFound
from oxide_csi.inflight import KeyedLocks
from oxide_csi.oxide import OxideClient, Snapshot, api_errors, is_uuid


def describe(csi_name: str) -> str:
    """The description that marks a snapshot as ours and records its CSI name."""
    return mark({"name": csi_name})


def csi_name_of(snapshot: Snapshot) -> str | None:
    """The CSI name recorded in a snapshot's description; None when it is not ours."""
    if not snapshot.name.startswith(naming.SNAPSHOT_PREFIX):
        return None
    body = unmark(snapshot.description)
    name = body.get("name") if body is not None else None
    return name if isinstance(name, str) else None


@dataclass(frozen=True)
class VolumeSnapshot:
    snapshot: Snapshot
    csi_name: str

    @property
    def ready(self) -> bool:
        return self.snapshot.state == "ready"


def managed_snapshot(snapshot: Snapshot) -> VolumeSnapshot | None:
    name = csi_name_of(snapshot)
    return None if name is None else VolumeSnapshot(snapshot=snapshot, csi_name=name)


def _usable(found: VolumeSnapshot) -> VolumeSnapshot:
    """``found``, unless Oxide reports it faulted: such a snapshot never becomes ready, so
    answering "not ready yet" would keep the CO polling forever."""
    if found.snapshot.state in FAULTED_STATES:
        raise FailedPrecondition(
            f"Oxide reports snapshot {found.snapshot.name} of {found.csi_name!r} as "
            f"{found.snapshot.state}; it will never be ready (delete the VolumeSnapshot)"
        )
    return found


class SnapshotManager:
    def __init__(self, client: OxideClient, volumes: VolumeManager) -> None:
        self._client = client
        self._volumes = volumes
        self._locks = KeyedLocks()

    async def create(
        self, csi_name: str, source_volume_id: str, *, deadline: float
    ) -> VolumeSnapshot:
        """Snapshot the source volume, or return the snapshot an earlier attempt made."""
        return await again_if_taken(lambda: self._create_once(csi_name, source_volume_id, deadline))

    async def _create_once(
        self, csi_name: str, source_volume_id: str, deadline: float
    ) -> VolumeSnapshot:
        name = naming.snapshot_name(csi_name)
        async with self._locks.hold(name):
            existing = await self._find_by_name(name, deadline)
            if existing is not None:
                found = managed_snapshot(existing)
                if found is None or found.csi_name != csi_name:
                    raise AlreadyExists(f"Oxide snapshot {name} exists and is not {csi_name!r}")
                if existing.disk_id.lower() != source_volume_id.lower():
                    raise AlreadyExists(f"snapshot {csi_name!r} exists for another source volume")
                return _usable(found)
            source = await self._volumes.find(source_volume_id, deadline=deadline)
            if source is None:
                raise NotFound(f"source volume {source_volume_id} does not exist")
            if source.local:
                raise FailedPrecondition(
                    f"volume {source_volume_id} is a local disk (sled-local NVMe): Oxide "
                    "cannot snapshot local disks"
                )
            snap = await self._client.create_snapshot(
                name, disk=source.disk.id, description=describe(csi_name), deadline=deadline
            )
            return _usable(VolumeSnapshot(snapshot=snap, csi_name=csi_name))

    async def delete(self, snapshot_id: str, *, deadline: float) -> None:
        """Delete a snapshot; an unknown id is success."""
        found = await self.find(snapshot_id, deadline=deadline)
        if found is None:
            return
        with contextlib.suppress(api_errors.OxideNotFound):
            await self._client.delete_snapshot(found.snapshot.id, deadline=deadline)

    async def find(self, snapshot_id: str, *, deadline: float) -> VolumeSnapshot | None:
        """The snapshot with this id, None when there is none; not ours: FAILED_PRECONDITION."""
        if not is_uuid(snapshot_id):
            return None
        try:
            snap = await self._client.get_snapshot(snapshot_id, deadline=deadline)
        except api_errors.OxideNotFound:
            return None
        found = managed_snapshot(snap)
        if found is None:
            raise FailedPrecondition(f"snapshot {snapshot_id} was not created by this plugin")
        return found

    async def list(self, *, deadline: float) -> AsyncIterator[VolumeSnapshot]:
        async for snap in self._client.list_snapshots(deadline=deadline):
            found = managed_snapshot(snap)
            if found is not None:
                yield found

    async def _find_by_name(self, name: str, deadline: float) -> Snapshot | None:
        try:
            return await self._client.get_snapshot(name, deadline=deadline)
        except api_errors.OxideNotFound:
            return None
