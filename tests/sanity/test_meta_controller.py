"""The suite is honest about the Controller service: each deliberately broken fake controller
below breaks one rule of the specification, and the check for that rule fails against it
(with CheckFailed naming the rule), while test_meta_baseline.py shows the unbroken fake passes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc

from oxide_csi.csi_v1 import csi_pb2
from tests.sanity.checks import Check, listing, publish, volumes
from tests.sanity.fakes.controller import Cap, FakeController, fail
from tests.sanity.fakes.harness import FakeDriver, broken_cases


class CreatesWithoutName(FakeController):
    def CreateVolume(self, request: Any, context: Any) -> Any:
        request.name = request.name or "made-up-name"
        return super().CreateVolume(request, context)


class CreatesWithoutCapabilities(FakeController):
    def check_caps(self, caps: Any, context: Any) -> None:
        pass


class NotIdempotent(FakeController):
    """Every CreateVolume makes a new volume, whatever the name."""

    def CreateVolume(self, request: Any, context: Any) -> Any:
        request.name = f"{request.name}-{len(self.state.volumes)}"
        return super().CreateVolume(request, context)


class IgnoresConflicts(FakeController):
    """A known name answers with the existing volume even when the size does not fit."""

    def CreateVolume(self, request: Any, context: Any) -> Any:
        for fake in self.state.volumes.values():
            if fake.name == request.name:
                return csi_pb2.CreateVolumeResponse(volume=fake.volume)
        return super().CreateVolume(request, context)


class ClonesFromNothing(FakeController):
    def CreateVolume(self, request: Any, context: Any) -> Any:
        request.ClearField("volume_content_source")
        return super().CreateVolume(request, context)


class InternalForUnknownVolume(FakeController):
    def get(self, volume_id: str, context: Any) -> Any:
        if volume_id not in self.state.volumes:
            fail(context, grpc.StatusCode.INTERNAL, "KeyError")
        return super().get(volume_id, context)


class DeleteUnknownIsNotFound(FakeController):
    def DeleteVolume(self, request: Any, context: Any) -> Any:
        if request.volume_id and request.volume_id not in self.state.volumes:
            fail(context, grpc.StatusCode.NOT_FOUND, "no such volume")
        return super().DeleteVolume(request, context)


class IgnoresMaxEntries(FakeController):
    def ListVolumes(self, request: Any, context: Any) -> Any:
        request.max_entries = 0
        return super().ListVolumes(request, context)


class AcceptsAnyToken(FakeController):
    def ListVolumes(self, request: Any, context: Any) -> Any:
        if not request.starting_token.startswith("fake:"):
            request.starting_token = ""
        return super().ListVolumes(request, context)


class RefusesNegativeMaxAsAborted(FakeController):
    def ListVolumes(self, request: Any, context: Any) -> Any:
        if request.max_entries < 0:
            fail(context, grpc.StatusCode.ABORTED, "odd")
        return super().ListVolumes(request, context)


class ListsWithoutStatus(FakeController):
    def ListVolumes(self, request: Any, context: Any) -> Any:
        reply = super().ListVolumes(request, context)
        for entry in reply.entries:
            entry.ClearField("status")
        return reply


class AbnormalFromBirth(FakeController):
    def status(self, volume_id: str) -> dict[str, Any]:
        status = super().status(volume_id)
        status["volume_condition"] = csi_pb2.VolumeCondition(abnormal=True, message="broken")
        return status


class PublishesAnywhere(FakeController):
    def ControllerPublishVolume(self, request: Any, context: Any) -> Any:
        if request.volume_id in self.state.volumes:
            return csi_pb2.ControllerPublishVolumeResponse()
        return super().ControllerPublishVolume(request, context)


class PublishesWithoutCapability(FakeController):
    def ControllerPublishVolume(self, request: Any, context: Any) -> Any:
        request.volume_capability.access_mode.mode = 1
        return super().ControllerPublishVolume(request, context)


class NewContextEachPublish(FakeController):
    attempts = 0

    def ControllerPublishVolume(self, request: Any, context: Any) -> Any:
        reply = super().ControllerPublishVolume(request, context)
        self.attempts += 1
        reply.publish_context["attempt"] = str(self.attempts)
        return reply


class ForgetsPublishedNodes(FakeController):
    def status(self, volume_id: str) -> dict[str, Any]:
        return {**super().status(volume_id), "published_node_ids": []}


class IgnoresReadonlyFlip(FakeController):
    def ControllerPublishVolume(self, request: Any, context: Any) -> Any:
        request.readonly = self.state.published.get(request.volume_id, {}).get(
            request.node_id, request.readonly
        )
        return super().ControllerPublishVolume(request, context)


class UnpublishUnknownIsInternal(FakeController):
    def ControllerUnpublishVolume(self, request: Any, context: Any) -> Any:
        if request.volume_id not in self.state.volumes:
            fail(context, grpc.StatusCode.INTERNAL, "KeyError")
        return super().ControllerUnpublishVolume(request, context)


class LiesAboutCapabilities(FakeController):
    capabilities = (Cap.LIST_VOLUMES_PUBLISHED_NODES, Cap.CREATE_DELETE_VOLUME)


class NeverConfirms(FakeController):
    def ValidateVolumeCapabilities(self, request: Any, context: Any) -> Any:
        super().ValidateVolumeCapabilities(request, context)
        return csi_pb2.ValidateVolumeCapabilitiesResponse(message="not sure")


class ConfirmsOtherCapabilities(FakeController):
    def ValidateVolumeCapabilities(self, request: Any, context: Any) -> Any:
        reply = super().ValidateVolumeCapabilities(request, context)
        reply.confirmed.volume_capabilities[0].mount.fs_type = "zfs"
        return reply


class OversizedVolumes(FakeController):
    def CreateVolume(self, request: Any, context: Any) -> Any:
        reply = super().CreateVolume(request, context)
        reply.volume.capacity_bytes = 100 << 30
        return reply


class AccessibleElsewhere(FakeController):
    """Makes every volume in a zone of its own, whatever the request required."""

    def topology(self, requirements: Any) -> list[csi_pb2.Topology]:
        return [csi_pb2.Topology(segments={"fake.sanity.example/zone": "b"})]


class ClonesNameAnotherSource(FakeController):
    def CreateVolume(self, request: Any, context: Any) -> Any:
        reply = super().CreateVolume(request, context)
        if reply.volume.content_source.WhichOneof("type") == "volume":
            reply.volume.content_source.volume.volume_id = "another"
        return reply


class IdOptional(FakeController):
    """Answers OK whenever volume_id is missing."""

    def DeleteVolume(self, request: Any, context: Any) -> Any:
        return super().DeleteVolume(request, context) if request.volume_id else self.empty()

    def ControllerUnpublishVolume(self, request: Any, context: Any) -> Any:
        if not request.volume_id:
            return csi_pb2.ControllerUnpublishVolumeResponse()
        return super().ControllerUnpublishVolume(request, context)

    def ControllerGetVolume(self, request: Any, context: Any) -> Any:
        if not request.volume_id:
            return csi_pb2.ControllerGetVolumeResponse()
        return super().ControllerGetVolume(request, context)

    def ValidateVolumeCapabilities(self, request: Any, context: Any) -> Any:
        if not request.volume_id or not request.volume_capabilities:
            return csi_pb2.ValidateVolumeCapabilitiesResponse(message="fine")
        return super().ValidateVolumeCapabilities(request, context)

    def empty(self) -> Any:
        return csi_pb2.DeleteVolumeResponse()


class PublishDefaultsNode(FakeController):
    def ControllerPublishVolume(self, request: Any, context: Any) -> Any:
        request.node_id = request.node_id or "fake-node-1"
        if not request.volume_id:
            return csi_pb2.ControllerPublishVolumeResponse()
        return super().ControllerPublishVolume(request, context)


class UnpublishNeverPublishedFails(FakeController):
    def ControllerUnpublishVolume(self, request: Any, context: Any) -> Any:
        if request.node_id not in self.state.published.get(request.volume_id, {}):
            fail(context, grpc.StatusCode.FAILED_PRECONDITION, "not attached")
        return super().ControllerUnpublishVolume(request, context)


class ListsTwice(FakeController):
    def ListVolumes(self, request: Any, context: Any) -> Any:
        reply = super().ListVolumes(request, context)
        reply.entries.extend(list(reply.entries))
        return reply


class NegativeCapacity(FakeController):
    def GetCapacity(self, request: Any, context: Any) -> Any:
        return csi_pb2.GetCapacityResponse(available_capacity=-1)


class CapacityGrows(FakeController):
    """Counts volumes as freeing space instead of taking it."""

    def GetCapacity(self, request: Any, context: Any) -> Any:
        reply = super().GetCapacity(request, context)
        reply.available_capacity += 2 * len(self.state.volumes) * (1 << 30) + 1
        reply.ClearField("maximum_volume_size")
        return reply


class LargestAboveAvailable(FakeController):
    def GetCapacity(self, request: Any, context: Any) -> Any:
        reply = super().GetCapacity(request, context)
        reply.maximum_volume_size.value = reply.available_capacity + 1
        return reply


BROKEN: list[tuple[Check, type[FakeController], str]] = [
    (volumes.create_volume_requires_name, CreatesWithoutName, "without a name.*got OK"),
    (
        volumes.create_volume_requires_capabilities,
        CreatesWithoutCapabilities,
        "without capabilities.*got OK",
    ),
    (volumes.create_volume_requires_access_mode, CreatesWithoutCapabilities, "access mode"),
    (volumes.create_volume_requires_access_type, CreatesWithoutCapabilities, "block or mount"),
    (volumes.create_volume_idempotent, NotIdempotent, "second volume"),
    (volumes.create_volume_conflicting_capacity, IgnoresConflicts, "ALREADY_EXISTS, got OK"),
    (volumes.create_volume_unknown_volume_source, ClonesFromNothing, "NOT_FOUND, got OK"),
    (volumes.create_volume_unknown_snapshot_source, ClonesFromNothing, "NOT_FOUND, got OK"),
    (volumes.validate_unknown_volume, InternalForUnknownVolume, "got INTERNAL"),
    (volumes.delete_volume_unknown, DeleteUnknownIsNotFound, "failed: NOT_FOUND"),
    (volumes.controller_capabilities_known, LiesAboutCapabilities, "without PUBLISH"),
    (listing.get_volume_unknown, InternalForUnknownVolume, "got INTERNAL"),
    (listing.get_volume_fields, AbnormalFromBirth, "abnormal"),
    (listing.list_volumes_fields, ListsWithoutStatus, "status is missing"),
    (listing.list_volumes_pagination, IgnoresMaxEntries, "max_entries=2"),
    (listing.list_volumes_bad_token, AcceptsAnyToken, "ABORTED, got OK"),
    (listing.list_volumes_negative_max, RefusesNegativeMaxAsAborted, "got ABORTED"),
    (publish.publish_unknown_node, PublishesAnywhere, "unknown node.*got OK"),
    (publish.publish_unknown_volume, InternalForUnknownVolume, "got INTERNAL"),
    (publish.publish_requires_capability, PublishesWithoutCapability, "got OK"),
    (publish.publish_idempotent, NewContextEachPublish, "another publish_context"),
    (publish.publish_idempotent, ForgetsPublishedNodes, "does not list node"),
    (publish.publish_readonly_conflict, IgnoresReadonlyFlip, "ALREADY_EXISTS, got OK"),
    (publish.unpublish_unknown_volume, UnpublishUnknownIsInternal, "got INTERNAL"),
    (volumes.validate_confirms, NeverConfirms, "not confirmed"),
    (volumes.validate_confirms, ConfirmsOtherCapabilities, "differ"),
    (volumes.create_volume_fields, OversizedVolumes, "outside the requested range"),
    (volumes.create_volume_in_node_topology, AccessibleElsewhere, "none of them the requisite"),
    (volumes.clone_volume, ClonesNameAnotherSource, "does not name its source"),
    (volumes.delete_volume_requires_id, IdOptional, "without a volume_id.*got OK"),
    (volumes.validate_requires_id, IdOptional, "without a volume_id.*got OK"),
    (volumes.validate_requires_capabilities, IdOptional, "without capabilities.*got OK"),
    (volumes.get_capacity, NegativeCapacity, "-1 bytes"),
    (volumes.get_capacity_with_a_request, NegativeCapacity, "-1 bytes"),
    (volumes.get_capacity_with_a_request, LargestAboveAvailable, "exceeds available_capacity"),
    (volumes.get_capacity_after_create, CapacityGrows, "grew"),
    (listing.get_volume_requires_id, IdOptional, "without a volume_id.*got OK"),
    (listing.list_volumes_fields, ListsTwice, "listed 2 times"),
    (publish.publish_requires_volume_id, PublishDefaultsNode, "without volume_id.*got OK"),
    (publish.publish_requires_node_id, PublishDefaultsNode, "without node_id.*got OK"),
    (publish.unpublish_requires_volume_id, IdOptional, "without volume_id.*got OK"),
    (publish.unpublish_never_published, UnpublishNeverPublishedFails, "FAILED_PRECONDITION"),
]


@broken_cases(BROKEN)
def test_check_catches_broken_controller(
    check: Check,
    broken: type[FakeController],
    match: str,
    fake_driver: Callable[..., FakeDriver],
) -> None:
    fake_driver(controller=broken).run_expecting_failure(check, match)
