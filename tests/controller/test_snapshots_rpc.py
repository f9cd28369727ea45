"""CreateSnapshot, DeleteSnapshot, ListSnapshots, and volumes made from snapshots and volumes."""

from __future__ import annotations

import asyncio
import uuid

import grpc

from oxide_csi.controller import naming
from oxide_csi.controller.metadata import clone_description
from oxide_csi.csi_v1 import csi_pb2
from tests.controller.conftest import GIB, Rig, mount_cap
from tests.rpc import code_of


async def _snapshot(rig: Rig, name: str, volume_id: str) -> csi_pb2.Snapshot:
    req = csi_pb2.CreateSnapshotRequest(name=name, source_volume_id=volume_id)
    resp: csi_pb2.CreateSnapshotResponse = await rig.stub.CreateSnapshot(req, timeout=30)
    return resp.snapshot


async def _ready(rig: Rig, name: str, volume_id: str) -> csi_pb2.Snapshot:
    """Repeat CreateSnapshot until ready, as the CO does."""
    for _ in range(200):
        snap = await _snapshot(rig, name, volume_id)
        if snap.ready_to_use:
            return snap
        await asyncio.sleep(0.02)
    raise AssertionError("snapshot never became ready")


async def test_create_snapshot_is_idempotent_by_name(rig: Rig) -> None:
    vol = (await rig.create("pvc-snap-src", size=2 * GIB)).volume
    snap = await _ready(rig, "snapshot-1", vol.volume_id)
    assert uuid.UUID(snap.snapshot_id)
    assert snap.source_volume_id == vol.volume_id
    assert snap.size_bytes == 2 * GIB
    assert snap.creation_time.seconds > 0
    again = await _snapshot(rig, "snapshot-1", vol.volume_id)
    assert again.snapshot_id == snap.snapshot_id
    other = (await rig.create("pvc-snap-other")).volume
    clash = _snapshot(rig, "snapshot-1", other.volume_id)
    assert await code_of(clash) == grpc.StatusCode.ALREADY_EXISTS


async def test_create_snapshot_errors(rig: Rig) -> None:
    unknown = _snapshot(rig, "snapshot-x", str(uuid.uuid4()))
    assert await code_of(unknown) == grpc.StatusCode.NOT_FOUND
    vol = (await rig.create("pvc-snap-err")).volume
    assert await code_of(_snapshot(rig, "", vol.volume_id)) == grpc.StatusCode.INVALID_ARGUMENT
    assert await code_of(_snapshot(rig, "snapshot-y", "")) == grpc.StatusCode.INVALID_ARGUMENT
    params = csi_pb2.CreateSnapshotRequest(
        name="snapshot-z", source_volume_id=vol.volume_id, parameters={"tier": "gold"}
    )
    assert await code_of(rig.stub.CreateSnapshot(params)) == grpc.StatusCode.INVALID_ARGUMENT


async def test_delete_snapshot_is_idempotent(rig: Rig) -> None:
    vol = (await rig.create("pvc-snap-del")).volume
    snap = await _ready(rig, "snapshot-del", vol.volume_id)
    req = csi_pb2.DeleteSnapshotRequest(snapshot_id=snap.snapshot_id)
    await rig.stub.DeleteSnapshot(req)
    await rig.stub.DeleteSnapshot(req)
    await rig.stub.DeleteSnapshot(csi_pb2.DeleteSnapshotRequest(snapshot_id="no-such-snapshot"))
    missing = rig.stub.DeleteSnapshot(csi_pb2.DeleteSnapshotRequest())
    assert await code_of(missing) == grpc.StatusCode.INVALID_ARGUMENT


async def test_list_snapshots_filters_and_pages(rig: Rig) -> None:
    a = (await rig.create("pvc-ls-a")).volume
    b = (await rig.create("pvc-ls-b")).volume
    snaps = [await _ready(rig, f"snap-a-{i}", a.volume_id) for i in range(3)]
    only_b = await _ready(rig, "snap-b-0", b.volume_id)

    everything: list[str] = []
    token = ""
    while True:
        resp = await rig.stub.ListSnapshots(
            csi_pb2.ListSnapshotsRequest(max_entries=2, starting_token=token)
        )
        everything.extend(e.snapshot.snapshot_id for e in resp.entries)
        token = resp.next_token
        if not token:
            break
    assert sorted(everything) == sorted([s.snapshot_id for s in snaps] + [only_b.snapshot_id])

    by_source = await rig.stub.ListSnapshots(
        csi_pb2.ListSnapshotsRequest(source_volume_id=b.volume_id)
    )
    assert [e.snapshot.snapshot_id for e in by_source.entries] == [only_b.snapshot_id]
    by_id = await rig.stub.ListSnapshots(
        csi_pb2.ListSnapshotsRequest(snapshot_id=snaps[1].snapshot_id)
    )
    assert [e.snapshot.snapshot_id for e in by_id.entries] == [snaps[1].snapshot_id]
    for unknown in (str(uuid.uuid4()), "nonsense"):
        none = await rig.stub.ListSnapshots(csi_pb2.ListSnapshotsRequest(snapshot_id=unknown))
        assert list(none.entries) == []
    bad = rig.stub.ListSnapshots(csi_pb2.ListSnapshotsRequest(starting_token="bogus"))
    assert await code_of(bad) == grpc.StatusCode.ABORTED


async def test_volume_from_snapshot(rig: Rig) -> None:
    src = (await rig.create("pvc-restore-src", size=3 * GIB)).volume
    snap = await _ready(rig, "snapshot-restore", src.volume_id)
    source = csi_pb2.VolumeContentSource(
        snapshot=csi_pb2.VolumeContentSource.SnapshotSource(snapshot_id=snap.snapshot_id)
    )
    restored = (await rig.create("pvc-restored", size=0, volume_content_source=source)).volume
    assert restored.capacity_bytes == 3 * GIB  # never smaller than the snapshot
    assert restored.content_source.snapshot.snapshot_id == snap.snapshot_id
    assert restored.volume_context["oxide.computer/source"] == "snapshot"
    disk = await rig.client.get_disk(restored.volume_id)
    assert disk.snapshot_id == snap.snapshot_id and disk.state == "detached"
    again = await rig.create("pvc-restored", size=0, volume_content_source=source)
    assert again.volume.volume_id == restored.volume_id
    blank_again = rig.create("pvc-restored", size=0)
    assert await code_of(blank_again) == grpc.StatusCode.ALREADY_EXISTS
    missing = csi_pb2.VolumeContentSource(
        snapshot=csi_pb2.VolumeContentSource.SnapshotSource(snapshot_id=str(uuid.uuid4()))
    )
    lost = rig.create("pvc-from-nothing", volume_content_source=missing)
    assert await code_of(lost) == grpc.StatusCode.NOT_FOUND


async def test_clone_goes_through_a_temporary_snapshot(rig: Rig) -> None:
    src = (await rig.create("pvc-clone-src", size=2 * GIB)).volume
    source = csi_pb2.VolumeContentSource(
        volume=csi_pb2.VolumeContentSource.VolumeSource(volume_id=src.volume_id)
    )
    clone = (await rig.create("pvc-clone", size=GIB, volume_content_source=source)).volume
    assert clone.capacity_bytes == 2 * GIB
    assert clone.content_source.volume.volume_id == src.volume_id
    leftovers = [s async for s in rig.client.list_snapshots()]
    assert leftovers == []  # the temporary snapshot is gone
    again = await rig.create("pvc-clone", size=GIB, volume_content_source=source)
    assert again.volume.volume_id == clone.volume_id
    gone = csi_pb2.VolumeContentSource(
        volume=csi_pb2.VolumeContentSource.VolumeSource(volume_id=str(uuid.uuid4()))
    )
    code = await code_of(rig.create("pvc-clone-lost", volume_content_source=gone))
    assert code == grpc.StatusCode.NOT_FOUND


async def test_failed_clone_leaves_nothing_and_retries_succeed(rig: Rig) -> None:
    src = (await rig.create("pvc-clone-retry-src", size=2 * GIB)).volume
    source = csi_pb2.VolumeContentSource(
        volume=csi_pb2.VolumeContentSource.VolumeSource(volume_id=src.volume_id)
    )
    too_small = csi_pb2.CreateVolumeRequest(
        name="pvc-clone-retry",
        capacity_range=csi_pb2.CapacityRange(required_bytes=GIB, limit_bytes=GIB),
        volume_capabilities=[mount_cap()],
        volume_content_source=source,
    )
    assert await code_of(rig.stub.CreateVolume(too_small)) == grpc.StatusCode.OUT_OF_RANGE
    assert [s async for s in rig.client.list_snapshots()] == []  # refused before snapshotting

    # An earlier attempt that died after taking the temporary snapshot: the retry reuses it.
    left = await rig.client.create_snapshot(
        naming.clone_snapshot_name("pvc-clone-retry"),
        disk=src.volume_id,
        description=clone_description(src.volume_id, "pvc-clone-retry"),
    )
    clone = (await rig.create("pvc-clone-retry", size=3 * GIB, volume_content_source=source)).volume
    assert clone.capacity_bytes == 3 * GIB
    disk = await rig.client.get_disk(clone.volume_id)
    assert disk.snapshot_id == left.id
    assert [s async for s in rig.client.list_snapshots()] == []
