"""Faulted disks and snapshots: never an answer of success, never "not ready yet" forever."""

from __future__ import annotations

import grpc

from oxide_csi.controller import naming
from oxide_csi.controller.metadata import clone_description
from oxide_csi.csi_v1 import csi_pb2
from tests.controller.conftest import GIB, Rig, mount_cap
from tests.rpc import code_of


def _clone_of(volume_id: str) -> csi_pb2.VolumeContentSource:
    return csi_pb2.VolumeContentSource(
        volume=csi_pb2.VolumeContentSource.VolumeSource(volume_id=volume_id)
    )


def _create(name: str, **fields: object) -> csi_pb2.CreateVolumeRequest:
    return csi_pb2.CreateVolumeRequest(
        name=name,
        capacity_range=csi_pb2.CapacityRange(required_bytes=GIB),
        volume_capabilities=[mount_cap()],
        **fields,  # type: ignore[arg-type]
    )


async def test_create_volume_never_answers_success_for_a_faulted_disk(rig: Rig) -> None:
    vol = (await rig.create("pvc-faulty")).volume
    rig.hooks.post(f"/sim/disks/{vol.volume_id}/fault").raise_for_status()
    # The CO's retry of the same CreateVolume (it never saw the first answer, say).
    code = await code_of(rig.stub.CreateVolume(_create("pvc-faulty")))
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    assert (await rig.client.get_disk(vol.volume_id)).state == "faulted", "left for the user"


async def test_a_faulted_snapshot_is_an_error_not_not_ready(rig: Rig) -> None:
    vol = (await rig.create("pvc-snap-src")).volume
    req = csi_pb2.CreateSnapshotRequest(name="snap-faulty", source_volume_id=vol.volume_id)
    first: csi_pb2.CreateSnapshotResponse = await rig.stub.CreateSnapshot(req, timeout=30)
    rig.hooks.post(f"/sim/snapshots/{first.snapshot.snapshot_id}/fault").raise_for_status()
    assert await code_of(rig.stub.CreateSnapshot(req)) == grpc.StatusCode.FAILED_PRECONDITION


async def test_a_clone_replaces_a_faulted_temporary_snapshot(rig: Rig) -> None:
    src = (await rig.create("pvc-clone-f-src")).volume
    name = naming.clone_snapshot_name("pvc-clone-f")
    left = await rig.client.create_snapshot(
        name, disk=src.volume_id, description=clone_description(src.volume_id, "pvc-clone-f")
    )
    rig.hooks.post(f"/sim/snapshots/{left.id}/fault").raise_for_status()
    clone = (await rig.create("pvc-clone-f", volume_content_source=_clone_of(src.volume_id))).volume
    disk = await rig.client.get_disk(clone.volume_id)
    assert disk.snapshot_id is not None and disk.snapshot_id != left.id
    assert [s async for s in rig.client.list_snapshots()] == [], "both snapshots are gone"


async def test_a_clone_never_takes_over_a_snapshot_it_did_not_make(rig: Rig) -> None:
    """A user's snapshot with the clone's name (no marker) is neither used nor deleted."""
    src = (await rig.create("pvc-clone-u-src")).volume
    name = naming.clone_snapshot_name("pvc-clone-u")
    theirs = await rig.client.create_snapshot(name, disk=src.volume_id, description="mine")
    req = _create("pvc-clone-u", volume_content_source=_clone_of(src.volume_id))
    assert await code_of(rig.stub.CreateVolume(req)) == grpc.StatusCode.FAILED_PRECONDITION
    assert (await rig.client.get_snapshot(name)).id == theirs.id
