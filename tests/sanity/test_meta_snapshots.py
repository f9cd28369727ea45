"""The suite is honest about snapshots: each broken fake breaks one rule, its check fails."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from oxide_csi.csi_v1 import csi_pb2
from tests.sanity.checks import Check, snapshots
from tests.sanity.fakes.controller import FakeController, fail
from tests.sanity.fakes.harness import FakeDriver, broken_cases


class SnapshotsWithoutName(FakeController):
    def CreateSnapshot(self, request: Any, context: Any) -> Any:
        request.name = request.name or "made-up"
        return super().CreateSnapshot(request, context)


class SnapshotsNothing(FakeController):
    """A snapshot without a source: answers with a snapshot of nothing."""

    def CreateSnapshot(self, request: Any, context: Any) -> Any:
        if not request.source_volume_id:
            return csi_pb2.CreateSnapshotResponse(snapshot=csi_pb2.Snapshot(snapshot_id="x"))
        return super().CreateSnapshot(request, context)


class SnapshotNamesNotUnique(FakeController):
    def CreateSnapshot(self, request: Any, context: Any) -> Any:
        request.name = f"{request.name}-{len(self.state.snapshots)}"
        return super().CreateSnapshot(request, context)


class SnapshotConflictsIgnored(FakeController):
    def CreateSnapshot(self, request: Any, context: Any) -> Any:
        for name, snapshot in self.state.snapshots.values():
            if name == request.name:
                return csi_pb2.CreateSnapshotResponse(snapshot=snapshot)
        return super().CreateSnapshot(request, context)


class NoCreationTime(FakeController):
    def CreateSnapshot(self, request: Any, context: Any) -> Any:
        reply = super().CreateSnapshot(request, context)
        reply.snapshot.ClearField("creation_time")
        return reply


class ListIgnoresSnapshotId(FakeController):
    def ListSnapshots(self, request: Any, context: Any) -> Any:
        request.snapshot_id = ""
        return super().ListSnapshots(request, context)


class ListIgnoresSource(FakeController):
    def ListSnapshots(self, request: Any, context: Any) -> Any:
        request.source_volume_id = ""
        return super().ListSnapshots(request, context)


class UnknownSnapshotIdIsError(FakeController):
    def ListSnapshots(self, request: Any, context: Any) -> Any:
        if request.snapshot_id and request.snapshot_id not in self.state.snapshots:
            fail(context, grpc.StatusCode.NOT_FOUND, "no such snapshot")
        return super().ListSnapshots(request, context)


class ListSnapshotsAnyToken(FakeController):
    def ListSnapshots(self, request: Any, context: Any) -> Any:
        if not request.starting_token.startswith("fake:"):
            request.starting_token = ""
        return super().ListSnapshots(request, context)


class ListSnapshotsUnbounded(FakeController):
    def ListSnapshots(self, request: Any, context: Any) -> Any:
        request.max_entries = 0
        return super().ListSnapshots(request, context)


class DeleteUnknownSnapshotFails(FakeController):
    def DeleteSnapshot(self, request: Any, context: Any) -> Any:
        if request.snapshot_id and request.snapshot_id not in self.state.snapshots:
            fail(context, grpc.StatusCode.NOT_FOUND, "no such snapshot")
        return super().DeleteSnapshot(request, context)


class DeleteVolumeTakesSnapshots(FakeController):
    def DeleteVolume(self, request: Any, context: Any) -> Any:
        for sid, (_, snapshot) in list(self.state.snapshots.items()):
            if snapshot.source_volume_id == request.volume_id:
                del self.state.snapshots[sid]
        return super().DeleteVolume(request, context)


class RestoresNamingAnotherSnapshot(FakeController):
    def CreateVolume(self, request: Any, context: Any) -> Any:
        reply = super().CreateVolume(request, context)
        if reply.volume.content_source.WhichOneof("type") == "snapshot":
            reply.volume.content_source.snapshot.snapshot_id = "another"
        return reply


class RestoresTooSmall(FakeController):
    def CreateSnapshot(self, request: Any, context: Any) -> Any:
        reply = super().CreateSnapshot(request, context)
        reply.snapshot.size_bytes = 1 << 50
        return reply


class GetSnapshotWithoutId(FakeController):
    def GetSnapshot(self, request: Any, context: Any) -> Any:
        if not request.snapshot_id:
            return csi_pb2.GetSnapshotResponse()
        return super().GetSnapshot(request, context)


class GetSnapshotOfNothing(FakeController):
    """Answers an empty snapshot for any id it does not know (deleted ones too)."""

    def GetSnapshot(self, request: Any, context: Any) -> Any:
        if request.snapshot_id not in self.state.snapshots:
            return csi_pb2.GetSnapshotResponse(snapshot=csi_pb2.Snapshot(snapshot_id="x"))
        return super().GetSnapshot(request, context)


class GetSnapshotRemembersDeleted(FakeController):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.seen: dict[str, csi_pb2.Snapshot] = {}

    def GetSnapshot(self, request: Any, context: Any) -> Any:
        if request.snapshot_id in self.state.snapshots:
            self.seen[request.snapshot_id] = self.state.snapshots[request.snapshot_id][1]
        if request.snapshot_id in self.seen:
            return csi_pb2.GetSnapshotResponse(snapshot=self.seen[request.snapshot_id])
        return super().GetSnapshot(request, context)


class GetSnapshotWrongSize(FakeController):
    def GetSnapshot(self, request: Any, context: Any) -> Any:
        reply = super().GetSnapshot(request, context)
        reply.snapshot.size_bytes += 1
        return reply


BROKEN: list[tuple[Check, type[FakeController], str]] = [
    (snapshots.snapshot_requires_name, SnapshotsWithoutName, "without a name.*got OK"),
    (snapshots.snapshot_requires_source, SnapshotsNothing, "without source_volume_id.*got OK"),
    (snapshots.snapshot_idempotent, SnapshotNamesNotUnique, "second snapshot"),
    (snapshots.snapshot_conflicting_source, SnapshotConflictsIgnored, "ALREADY_EXISTS, got OK"),
    (snapshots.snapshot_fields, NoCreationTime, "creation_time"),
    (snapshots.list_snapshots_filters, ListIgnoresSnapshotId, r"ListSnapshots\(snapshot_id\)"),
    (snapshots.list_snapshots_filters, ListIgnoresSource, r"ListSnapshots\(source_volume_id\)"),
    (snapshots.list_snapshots_filters, UnknownSnapshotIdIsError, "failed: NOT_FOUND"),
    (snapshots.list_snapshots_pagination, ListSnapshotsAnyToken, "ABORTED, got OK"),
    (snapshots.list_snapshots_pagination, ListSnapshotsUnbounded, "max_entries=2"),
    (snapshots.delete_snapshot_unknown, DeleteUnknownSnapshotFails, "failed: NOT_FOUND"),
    (snapshots.delete_volume_with_snapshot, DeleteVolumeTakesSnapshots, "removed its snapshot"),
    (snapshots.volume_from_snapshot, RestoresNamingAnotherSnapshot, "content_source"),
    (snapshots.volume_from_snapshot, RestoresTooSmall, "smaller than its snapshot"),
    (snapshots.get_snapshot_requires_id, GetSnapshotWithoutId, "without snapshot_id.*got OK"),
    (snapshots.get_snapshot_unknown, GetSnapshotOfNothing, "NOT_FOUND, got OK"),
    (snapshots.get_snapshot_fields, GetSnapshotRemembersDeleted, "deleted snapshot.*got OK"),
    (snapshots.get_snapshot_fields, GetSnapshotWrongSize, "another source volume or size"),
]


@broken_cases(BROKEN)
def test_check_catches_broken_snapshots(
    check: Check,
    broken: type[FakeController],
    match: str,
    fake_driver: Callable[..., FakeDriver],
) -> None:
    fake_driver(controller=broken).run_expecting_failure(check, match)
