"""Controller: CreateSnapshot, DeleteSnapshot, ListSnapshots, and volumes made from snapshots.

Reading a restored volume's data back goes through the node and lives with the lifecycle checks.
"""

from __future__ import annotations

import time

from oxide_csi.csi_v1 import csi_pb2
from tests.sanity.checks.common import (
    list_snapshot_pages,
    listed_snapshot_ids,
    max_length_name,
    unknown_id,
)
from tests.sanity.driver import CheckFailed, Code, ControllerCap, Driver, unique_name
from tests.sanity.resources import Resources

_SNAP = ControllerCap.CREATE_DELETE_SNAPSHOT
_LIST = ControllerCap.LIST_SNAPSHOTS
_CREATE = ControllerCap.CREATE_DELETE_VOLUME
READY_TIMEOUT = 120.0


def wait_ready(d: Driver, r: Resources, snapshot: csi_pb2.Snapshot, name: str) -> None:
    """Repeat CreateSnapshot (the spec's way to poll) until ready_to_use."""
    deadline = time.monotonic() + READY_TIMEOUT
    while not snapshot.ready_to_use:
        if time.monotonic() > deadline:
            raise CheckFailed(f"snapshot {snapshot.snapshot_id} never became ready_to_use")
        time.sleep(0.5)
        snapshot = r.create_snapshot(snapshot.source_volume_id, name)


def snapshot_requires_name(d: Driver, r: Resources) -> None:
    """CreateSnapshot: name is REQUIRED."""
    d.require_controller(_SNAP, _CREATE)
    volume = r.new_volume("snapnoname")
    request = csi_pb2.CreateSnapshotRequest(source_volume_id=volume.volume_id)
    r.expect_error(Code.INVALID_ARGUMENT, "CreateSnapshot", request, "without a name")


def snapshot_requires_source(d: Driver, r: Resources) -> None:
    """CreateSnapshot: source_volume_id is REQUIRED."""
    d.require_controller(_SNAP)
    request = csi_pb2.CreateSnapshotRequest(name=unique_name("snapnosrc"))
    r.expect_error(Code.INVALID_ARGUMENT, "CreateSnapshot", request, "without source_volume_id")


def snapshot_fields(d: Driver, r: Resources) -> None:
    """A snapshot has an id, names its source volume, has a creation_time and a size that is
    not negative, and becomes ready_to_use."""
    d.require_controller(_SNAP, _CREATE)
    volume = r.new_volume("snapsrc")
    name = unique_name("snap")
    snapshot = r.create_snapshot(volume.volume_id, name)
    if snapshot.source_volume_id != volume.volume_id:
        raise CheckFailed(f"snapshot names source {snapshot.source_volume_id!r}")
    if not snapshot.HasField("creation_time") or snapshot.creation_time.seconds <= 0:
        raise CheckFailed("snapshot creation_time is REQUIRED but missing")
    if snapshot.size_bytes < 0:
        raise CheckFailed(f"snapshot size_bytes is negative ({snapshot.size_bytes})")
    wait_ready(d, r, snapshot, name)


def snapshot_idempotent(d: Driver, r: Resources) -> None:
    """The same name and source answer OK with the same snapshot."""
    d.require_controller(_SNAP, _CREATE)
    volume = r.new_volume("snapidem")
    name = unique_name("snapidem")
    first = r.create_snapshot(volume.volume_id, name)
    second = r.create_snapshot(volume.volume_id, name)
    if first.snapshot_id != second.snapshot_id:
        raise CheckFailed("a repeated CreateSnapshot made a second snapshot")


def snapshot_conflicting_source(d: Driver, r: Resources) -> None:
    """The same name with another source volume is ALREADY_EXISTS."""
    d.require_controller(_SNAP, _CREATE)
    one, other = r.new_volume("snapa"), r.new_volume("snapb")
    name = unique_name("snapconflict")
    r.create_snapshot(one.volume_id, name)
    request = csi_pb2.CreateSnapshotRequest(source_volume_id=other.volume_id, name=name)
    r.expect_error(
        Code.ALREADY_EXISTS, "CreateSnapshot", request, "with the same name, another source"
    )


def snapshot_max_name(d: Driver, r: Resources) -> None:
    """A snapshot name of the spec's maximum length (128 bytes) is accepted."""
    d.require_controller(_SNAP, _CREATE)
    volume = r.new_volume("snaplong")
    r.create_snapshot(volume.volume_id, max_length_name("snap"))


def delete_snapshot_requires_id(d: Driver, r: Resources) -> None:
    """DeleteSnapshot: snapshot_id is REQUIRED."""
    d.require_controller(_SNAP)
    request = csi_pb2.DeleteSnapshotRequest()
    d.expect_error(Code.INVALID_ARGUMENT, "DeleteSnapshot", request, "without snapshot_id")


def delete_snapshot_unknown(d: Driver, r: Resources) -> None:
    """DeleteSnapshot of a snapshot that does not exist MUST reply OK."""
    d.require_controller(_SNAP)
    d.ok("DeleteSnapshot", csi_pb2.DeleteSnapshotRequest(snapshot_id=unknown_id()), "unknown")


def delete_snapshot_idempotent(d: Driver, r: Resources) -> None:
    """DeleteSnapshot twice is OK twice, and the snapshot is no longer listed."""
    d.require_controller(_SNAP, _CREATE)
    volume = r.new_volume("snapdel")
    snapshot = r.create_snapshot(volume.volume_id, unique_name("snapdel"))
    request = csi_pb2.DeleteSnapshotRequest(snapshot_id=snapshot.snapshot_id)
    r.call("DeleteSnapshot", request)
    r.call("DeleteSnapshot", request, "repeated")
    if d.has_controller(_LIST) and snapshot.snapshot_id in listed_snapshot_ids(d):
        raise CheckFailed("a deleted snapshot is still listed")


def list_snapshots_filters(d: Driver, r: Resources) -> None:
    """ListSnapshots lists every snapshot; snapshot_id selects exactly that one, and
    source_volume_id only that volume's; unknown filters list nothing."""
    d.require_controller(_SNAP, _LIST, _CREATE)
    v1, v2 = r.new_volume("lsa"), r.new_volume("lsb")
    s1 = r.create_snapshot(v1.volume_id, unique_name("ls1"))
    s2 = r.create_snapshot(v2.volume_id, unique_name("ls2"))
    s3 = r.create_snapshot(v1.volume_id, unique_name("ls3"))
    everything = listed_snapshot_ids(d)
    for snap in (s1, s2, s3):
        if everything.count(snap.snapshot_id) != 1:
            raise CheckFailed(
                f"snapshot {snap.snapshot_id} listed {everything.count(snap.snapshot_id)} times"
            )
    by_id = [s for page in list_snapshot_pages(d, snapshot_id=s2.snapshot_id) for s in page]
    if [s.snapshot_id for s in by_id] != [s2.snapshot_id]:
        raise CheckFailed(f"ListSnapshots(snapshot_id) returned {[s.snapshot_id for s in by_id]}")
    if by_id[0].source_volume_id != v2.volume_id:
        raise CheckFailed("ListSnapshots(snapshot_id) reports the wrong source_volume_id")
    by_source = [s for page in list_snapshot_pages(d, source_volume_id=v1.volume_id) for s in page]
    if {s.snapshot_id for s in by_source} != {s1.snapshot_id, s3.snapshot_id}:
        raise CheckFailed(
            f"ListSnapshots(source_volume_id) returned {[s.snapshot_id for s in by_source]}"
        )
    if listed_snapshot_ids(d, snapshot_id=unknown_id()):
        raise CheckFailed("ListSnapshots with an unknown snapshot_id listed something")
    if listed_snapshot_ids(d, source_volume_id=unknown_id()):
        raise CheckFailed("ListSnapshots with an unknown source_volume_id listed something")


def list_snapshots_pagination(d: Driver, r: Resources) -> None:
    """max_entries bounds each page; next_token leads through every snapshot exactly once;
    a made-up token is ABORTED; a negative max_entries is INVALID_ARGUMENT."""
    d.require_controller(_SNAP, _LIST, _CREATE)
    volume = r.new_volume("lspage")
    made = {
        r.create_snapshot(volume.volume_id, unique_name(f"pg{i}")).snapshot_id for i in range(3)
    }
    paged = list_snapshot_pages(d, max_entries=2)
    ids = [s.snapshot_id for page in paged for s in page]
    if len(ids) != len(set(ids)):
        raise CheckFailed("paging with max_entries=2 returned a snapshot twice")
    if not made <= set(ids):
        raise CheckFailed(f"paging with max_entries=2 missed {sorted(made - set(ids))}")
    if len(paged) < 2:
        raise CheckFailed("more snapshots than max_entries, but no next_token was returned")
    bad = csi_pb2.ListSnapshotsRequest(starting_token="sanity-not-a-token-" + unknown_id())
    d.expect_error(Code.ABORTED, "ListSnapshots", bad, "with a made-up starting_token")
    negative = csi_pb2.ListSnapshotsRequest(max_entries=-1)
    d.expect_error(Code.INVALID_ARGUMENT, "ListSnapshots", negative, "with max_entries=-1")


def volume_from_snapshot(d: Driver, r: Resources) -> None:
    """A volume can be created from a snapshot; it is at least the snapshot's size and, if it
    reports a content_source, that names the snapshot."""
    d.require_controller(_SNAP, _CREATE)
    volume = r.new_volume("restoresrc")
    name = unique_name("restore")
    snapshot = r.create_snapshot(volume.volume_id, name)
    wait_ready(d, r, snapshot, name)
    source = csi_pb2.VolumeContentSource(
        snapshot=csi_pb2.VolumeContentSource.SnapshotSource(snapshot_id=snapshot.snapshot_id)
    )
    restored = r.create_volume(d.volume_request(unique_name("restored"), source=source))
    if restored.capacity_bytes and restored.capacity_bytes < snapshot.size_bytes:
        raise CheckFailed("the restored volume is smaller than its snapshot")
    if restored.HasField("content_source") and (
        restored.content_source.snapshot.snapshot_id != snapshot.snapshot_id
    ):
        raise CheckFailed("the restored volume's content_source does not name its snapshot")


def delete_volume_with_snapshot(d: Driver, r: Resources) -> None:
    """Deleting a volume that has a snapshot either works and leaves the snapshot usable
    (listed, and a source for new volumes), or is FAILED_PRECONDITION."""
    d.require_controller(_SNAP, _CREATE)
    volume = r.new_volume("snaporphan")
    name = unique_name("orphan")
    snapshot = r.create_snapshot(volume.volume_id, name)
    wait_ready(d, r, snapshot, name)
    request = csi_pb2.DeleteVolumeRequest(volume_id=volume.volume_id)
    if (
        r.call_or_fail_with(Code.FAILED_PRECONDITION, "DeleteVolume", request, "with a snapshot")
        is None
    ):
        return  # the plugin keeps volume and snapshot together: allowed
    if d.has_controller(_LIST) and snapshot.snapshot_id not in listed_snapshot_ids(d):
        raise CheckFailed("deleting the source volume removed its snapshot from ListSnapshots")
    source = csi_pb2.VolumeContentSource(
        snapshot=csi_pb2.VolumeContentSource.SnapshotSource(snapshot_id=snapshot.snapshot_id)
    )
    r.create_volume(d.volume_request(unique_name("orphaned"), source=source), "from orphan")


def get_snapshot_requires_id(d: Driver, r: Resources) -> None:
    """GetSnapshot: snapshot_id is REQUIRED."""
    d.require_controller(ControllerCap.GET_SNAPSHOT)
    request = csi_pb2.GetSnapshotRequest()
    d.expect_error(Code.INVALID_ARGUMENT, "GetSnapshot", request, "without snapshot_id")


def get_snapshot_unknown(d: Driver, r: Resources) -> None:
    """GetSnapshot of a snapshot that does not exist is NOT_FOUND."""
    d.require_controller(ControllerCap.GET_SNAPSHOT)
    request = csi_pb2.GetSnapshotRequest(snapshot_id=unknown_id())
    d.expect_error(Code.NOT_FOUND, "GetSnapshot", request, "of an unknown snapshot")


def get_snapshot_fields(d: Driver, r: Resources) -> None:
    """GetSnapshot answers the snapshot CreateSnapshot made (id, source, size), and
    NOT_FOUND once it is deleted."""
    d.require_controller(ControllerCap.GET_SNAPSHOT, _SNAP, _CREATE)
    volume = r.new_volume("getsnap")
    made = r.create_snapshot(volume.volume_id, unique_name("getsnap"))
    request = csi_pb2.GetSnapshotRequest(snapshot_id=made.snapshot_id)
    got = d.ok("GetSnapshot", request).snapshot
    if got.snapshot_id != made.snapshot_id:
        raise CheckFailed(f"GetSnapshot answered snapshot {got.snapshot_id!r}")
    if got.source_volume_id != volume.volume_id or got.size_bytes != made.size_bytes:
        raise CheckFailed("GetSnapshot reports another source volume or size than CreateSnapshot")
    r.call("DeleteSnapshot", csi_pb2.DeleteSnapshotRequest(snapshot_id=made.snapshot_id))
    d.expect_error(Code.NOT_FOUND, "GetSnapshot", request, "of a deleted snapshot")


CHECKS = (
    snapshot_requires_name,
    snapshot_requires_source,
    snapshot_fields,
    snapshot_idempotent,
    snapshot_conflicting_source,
    snapshot_max_name,
    delete_snapshot_requires_id,
    delete_snapshot_unknown,
    delete_snapshot_idempotent,
    list_snapshots_filters,
    list_snapshots_pagination,
    volume_from_snapshot,
    delete_volume_with_snapshot,
    get_snapshot_requires_id,
    get_snapshot_unknown,
    get_snapshot_fields,
)
