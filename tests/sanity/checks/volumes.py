"""Controller: CreateVolume, DeleteVolume, ValidateVolumeCapabilities, capabilities.

Each check says in its docstring which rule of the CSI specification it holds the driver to.
"""

from __future__ import annotations

import pytest

from oxide_csi.csi_v1 import csi_pb2
from tests.sanity.checks.common import max_length_name, unknown_id
from tests.sanity.driver import (
    AccessMode,
    CheckFailed,
    Code,
    ControllerCap,
    Driver,
    PluginService,
    mount_capability,
    unique_name,
)
from tests.sanity.resources import Resources

_CREATE = ControllerCap.CREATE_DELETE_VOLUME


def controller_capabilities_known(d: Driver, r: Resources) -> None:
    """Every controller capability is a known RPC type; LIST_VOLUMES_PUBLISHED_NODES needs
    PUBLISH_UNPUBLISH_VOLUME ("The SP MUST also support PUBLISH_UNPUBLISH_VOLUME")."""
    d.require_controller()
    caps = d.controller_capabilities()
    for cap in caps:
        if cap == 0 or cap not in ControllerCap.Type.values():
            raise CheckFailed(f"unknown controller capability {cap}")
    if (
        ControllerCap.LIST_VOLUMES_PUBLISHED_NODES in caps
        and ControllerCap.PUBLISH_UNPUBLISH_VOLUME not in caps
    ):
        raise CheckFailed("LIST_VOLUMES_PUBLISHED_NODES advertised without PUBLISH_UNPUBLISH")


def create_volume_requires_name(d: Driver, r: Resources) -> None:
    """name is REQUIRED: a request without it is INVALID_ARGUMENT."""
    d.require_controller(_CREATE)
    request = d.volume_request("")
    r.expect_error(Code.INVALID_ARGUMENT, "CreateVolume", request, "without a name")


def create_volume_requires_capabilities(d: Driver, r: Resources) -> None:
    """volume_capabilities is REQUIRED (a repeated field: at least one element)."""
    d.require_controller(_CREATE)
    request = d.volume_request(unique_name("nocaps"))
    del request.volume_capabilities[:]
    r.expect_error(Code.INVALID_ARGUMENT, "CreateVolume", request, "without capabilities")


def create_volume_requires_access_mode(d: Driver, r: Resources) -> None:
    """VolumeCapability.access_mode is REQUIRED."""
    d.require_controller(_CREATE)
    cap = csi_pb2.VolumeCapability(mount=csi_pb2.VolumeCapability.MountVolume())
    request = d.volume_request(unique_name("nomode"), capabilities=[cap])
    r.expect_error(Code.INVALID_ARGUMENT, "CreateVolume", request, "without an access mode")


def create_volume_requires_access_type(d: Driver, r: Resources) -> None:
    """One of VolumeCapability.block / .mount MUST be specified."""
    d.require_controller(_CREATE)
    mode = AccessMode(mode=AccessMode.SINGLE_NODE_WRITER)
    cap = csi_pb2.VolumeCapability(access_mode=mode)
    request = d.volume_request(unique_name("notype"), capabilities=[cap])
    r.expect_error(Code.INVALID_ARGUMENT, "CreateVolume", request, "without block or mount")


def create_volume_fields(d: Driver, r: Resources) -> None:
    """A new volume has a volume_id, honours the capacity range, reports no topology unless
    VOLUME_ACCESSIBILITY_CONSTRAINTS is advertised, and names no content source."""
    d.require_controller(_CREATE)
    size = d.config.volume_size
    request = d.volume_request(unique_name("fields"), required_bytes=size, limit_bytes=4 * size)
    volume = r.create_volume(request)
    if volume.capacity_bytes and not size <= volume.capacity_bytes <= 4 * size:
        raise CheckFailed(
            f"capacity {volume.capacity_bytes} is outside the requested range {size}..{4 * size}"
        )
    if volume.accessible_topology and (
        PluginService.VOLUME_ACCESSIBILITY_CONSTRAINTS not in d.plugin_capabilities()
    ):
        raise CheckFailed("volume reports topology without VOLUME_ACCESSIBILITY_CONSTRAINTS")
    if volume.HasField("content_source"):
        raise CheckFailed("a volume created blank reports a content_source")


def _within(volume_side: csi_pb2.Topology, requested: csi_pb2.Topology) -> bool:
    """Whether a volume accessible from ``volume_side`` is accessible from ``requested``:
    every segment the volume names, the requested topology has with the same value."""
    return all(requested.segments.get(k) == v for k, v in volume_side.segments.items())


def create_volume_in_node_topology(d: Driver, r: Resources) -> None:
    """VOLUME_ACCESSIBILITY_CONSTRAINTS: a volume asked for with the node's own topology as
    requisite and preferred (what a CO does for a pod bound to that node) is made, and "the
    provisioned volume MUST be accessible from at least one of the requisite topologies"."""
    d.require_controller(_CREATE)
    if PluginService.VOLUME_ACCESSIBILITY_CONSTRAINTS not in d.plugin_capabilities():
        pytest.skip("the plugin does not advertise VOLUME_ACCESSIBILITY_CONSTRAINTS")
    info = d.node_info()
    if not info.HasField("accessible_topology"):
        pytest.skip("the node reports no accessible_topology")
    request = d.volume_request(unique_name("topology"))
    request.accessibility_requirements.requisite.append(info.accessible_topology)
    request.accessibility_requirements.preferred.append(info.accessible_topology)
    volume = r.create_volume(request, "with the node's topology as requisite")
    if not any(_within(t, info.accessible_topology) for t in volume.accessible_topology):
        raise CheckFailed(
            f"the volume is accessible from {list(volume.accessible_topology)}, none of them "
            "the requisite topology"
        )


def create_volume_idempotent(d: Driver, r: Resources) -> None:
    """The same name with the same arguments answers OK with the same volume."""
    d.require_controller(_CREATE)
    request = d.volume_request(unique_name("idem"))
    first = r.create_volume(request)
    second = r.create_volume(request, "repeated with the same name and arguments")
    if second.volume_id != first.volume_id:
        raise CheckFailed(
            f"a repeated CreateVolume made a second volume ({first.volume_id} vs "
            f"{second.volume_id})"
        )
    if second.capacity_bytes != first.capacity_bytes:
        raise CheckFailed("a repeated CreateVolume reports a different capacity")
    if dict(second.volume_context) != dict(first.volume_context):
        raise CheckFailed("a repeated CreateVolume reports a different volume_context")


def create_volume_conflicting_capacity(d: Driver, r: Resources) -> None:
    """The same name with an incompatible capacity_range is ALREADY_EXISTS."""
    d.require_controller(_CREATE)
    name = unique_name("conflict")
    first = r.create_volume(d.volume_request(name))
    bigger = 2 * (first.capacity_bytes or d.config.volume_size)
    request = d.volume_request(name, required_bytes=bigger, limit_bytes=bigger)
    r.expect_error(
        Code.ALREADY_EXISTS, "CreateVolume", request, "with the same name and a larger size"
    )


def create_volume_max_name(d: Driver, r: Resources) -> None:
    """A name of the spec's maximum length (128 bytes) is accepted."""
    d.require_controller(_CREATE)
    r.create_volume(d.volume_request(max_length_name("long")), "with a 128-byte name")


def create_volume_unknown_snapshot_source(d: Driver, r: Resources) -> None:
    """A source snapshot that does not exist is NOT_FOUND."""
    d.require_controller(_CREATE, ControllerCap.CREATE_DELETE_SNAPSHOT)
    source = csi_pb2.VolumeContentSource(
        snapshot=csi_pb2.VolumeContentSource.SnapshotSource(snapshot_id=unknown_id())
    )
    request = d.volume_request(unique_name("nosnap"), source=source)
    r.expect_error(Code.NOT_FOUND, "CreateVolume", request, "from an unknown snapshot")


def create_volume_unknown_volume_source(d: Driver, r: Resources) -> None:
    """A source volume that does not exist is NOT_FOUND."""
    d.require_controller(_CREATE, ControllerCap.CLONE_VOLUME)
    source = csi_pb2.VolumeContentSource(
        volume=csi_pb2.VolumeContentSource.VolumeSource(volume_id=unknown_id())
    )
    request = d.volume_request(unique_name("noclone"), source=source)
    r.expect_error(Code.NOT_FOUND, "CreateVolume", request, "from an unknown volume")


def clone_volume(d: Driver, r: Resources) -> None:
    """CLONE_VOLUME: a volume can be created from another; it is at least as large and, if
    it reports a content_source, that names the source volume."""
    d.require_controller(_CREATE, ControllerCap.CLONE_VOLUME)
    source = r.new_volume("clonesrc")
    content = csi_pb2.VolumeContentSource(
        volume=csi_pb2.VolumeContentSource.VolumeSource(volume_id=source.volume_id)
    )
    clone = r.create_volume(d.volume_request(unique_name("clone"), source=content))
    if clone.volume_id == source.volume_id:
        raise CheckFailed("the clone has the source volume's id")
    if clone.capacity_bytes and clone.capacity_bytes < source.capacity_bytes:
        raise CheckFailed("the clone is smaller than its source")
    if clone.HasField("content_source") and clone.content_source.volume.volume_id != (
        source.volume_id
    ):
        raise CheckFailed("the clone's content_source does not name its source volume")


def delete_volume_requires_id(d: Driver, r: Resources) -> None:
    """volume_id is REQUIRED."""
    d.require_controller(_CREATE)
    request = csi_pb2.DeleteVolumeRequest()
    d.expect_error(Code.INVALID_ARGUMENT, "DeleteVolume", request, "without a volume_id")


def delete_volume_unknown(d: Driver, r: Resources) -> None:
    """A volume that does not exist: DeleteVolume MUST reply OK."""
    d.require_controller(_CREATE)
    d.ok("DeleteVolume", csi_pb2.DeleteVolumeRequest(volume_id=unknown_id()), "unknown volume")


def delete_volume_idempotent(d: Driver, r: Resources) -> None:
    """DeleteVolume twice is OK twice; afterwards the volume is gone (NOT_FOUND to
    ValidateVolumeCapabilities and, with GET_VOLUME, to ControllerGetVolume)."""
    d.require_controller(_CREATE)
    volume = r.new_volume("delete")
    r.delete_volume(volume.volume_id)
    d.ok("DeleteVolume", csi_pb2.DeleteVolumeRequest(volume_id=volume.volume_id), "again")
    validate = csi_pb2.ValidateVolumeCapabilitiesRequest(
        volume_id=volume.volume_id, volume_capabilities=[mount_capability()]
    )
    d.expect_error(Code.NOT_FOUND, "ValidateVolumeCapabilities", validate, "for a deleted volume")
    if d.has_controller(ControllerCap.GET_VOLUME):
        get = csi_pb2.ControllerGetVolumeRequest(volume_id=volume.volume_id)
        d.expect_error(Code.NOT_FOUND, "ControllerGetVolume", get, "for a deleted volume")


def validate_requires_id(d: Driver, r: Resources) -> None:
    """ValidateVolumeCapabilities: volume_id is REQUIRED."""
    d.require_controller()
    request = csi_pb2.ValidateVolumeCapabilitiesRequest(volume_capabilities=[mount_capability()])
    d.expect_error(
        Code.INVALID_ARGUMENT, "ValidateVolumeCapabilities", request, "without a volume_id"
    )


def validate_requires_capabilities(d: Driver, r: Resources) -> None:
    """ValidateVolumeCapabilities: volume_capabilities is REQUIRED."""
    d.require_controller(_CREATE)
    volume = r.new_volume("validate")
    request = csi_pb2.ValidateVolumeCapabilitiesRequest(volume_id=volume.volume_id)
    d.expect_error(
        Code.INVALID_ARGUMENT, "ValidateVolumeCapabilities", request, "without capabilities"
    )


def validate_unknown_volume(d: Driver, r: Resources) -> None:
    """ValidateVolumeCapabilities of a volume that does not exist is NOT_FOUND."""
    d.require_controller()
    request = csi_pb2.ValidateVolumeCapabilitiesRequest(
        volume_id=unknown_id(), volume_capabilities=[mount_capability()]
    )
    d.expect_error(Code.NOT_FOUND, "ValidateVolumeCapabilities", request, "for an unknown volume")


def validate_confirms(d: Driver, r: Resources) -> None:
    """The capabilities a volume was created with are confirmed, and what is confirmed is
    what was asked (confirmed.volume_capabilities is REQUIRED)."""
    d.require_controller(_CREATE)
    volume = r.new_volume("confirm")
    caps = [mount_capability()]  # what new_volume creates with
    request = csi_pb2.ValidateVolumeCapabilitiesRequest(
        volume_id=volume.volume_id,
        volume_context=volume.volume_context,
        volume_capabilities=caps,
        parameters=d.config.parameters,
    )
    reply = d.ok("ValidateVolumeCapabilities", request)
    if not reply.HasField("confirmed"):
        raise CheckFailed(f"the creation capabilities were not confirmed: {reply.message!r}")
    if list(reply.confirmed.volume_capabilities) != caps:
        raise CheckFailed("confirmed.volume_capabilities differ from the requested ones")


def get_capacity(d: Driver, r: Resources) -> None:
    """GET_CAPACITY: available_capacity is present and not negative."""
    d.require_controller(ControllerCap.GET_CAPACITY)
    reply = d.ok("GetCapacity", csi_pb2.GetCapacityRequest())
    if reply.available_capacity < 0:
        raise CheckFailed(f"GetCapacity reports {reply.available_capacity} bytes")


def get_capacity_with_a_request(d: Driver, r: Resources) -> None:
    """GetCapacity for the configured capabilities and parameters: OK, not negative, and a
    maximum_volume_size (when given) not above the available capacity."""
    d.require_controller(ControllerCap.GET_CAPACITY)
    request = csi_pb2.GetCapacityRequest(
        volume_capabilities=[mount_capability()], parameters=d.config.parameters
    )
    reply = d.ok("GetCapacity", request)
    if reply.available_capacity < 0:
        raise CheckFailed(f"GetCapacity reports {reply.available_capacity} bytes")
    if reply.HasField("maximum_volume_size"):
        largest = reply.maximum_volume_size.value
        if largest > reply.available_capacity:
            raise CheckFailed(
                f"maximum_volume_size {largest} exceeds available_capacity "
                f"{reply.available_capacity}"
            )


def get_capacity_after_create(d: Driver, r: Resources) -> None:
    """Creating a volume never makes more capacity available."""
    d.require_controller(ControllerCap.GET_CAPACITY, ControllerCap.CREATE_DELETE_VOLUME)
    before = d.ok("GetCapacity", csi_pb2.GetCapacityRequest()).available_capacity
    r.new_volume("capacity")
    after = d.ok("GetCapacity", csi_pb2.GetCapacityRequest()).available_capacity
    if after > before:
        raise CheckFailed(f"available capacity grew from {before} to {after} after CreateVolume")


CHECKS = (
    controller_capabilities_known,
    create_volume_requires_name,
    create_volume_requires_capabilities,
    create_volume_requires_access_mode,
    create_volume_requires_access_type,
    create_volume_fields,
    create_volume_in_node_topology,
    create_volume_idempotent,
    create_volume_conflicting_capacity,
    create_volume_max_name,
    create_volume_unknown_snapshot_source,
    create_volume_unknown_volume_source,
    clone_volume,
    delete_volume_requires_id,
    delete_volume_unknown,
    delete_volume_idempotent,
    validate_requires_id,
    validate_requires_capabilities,
    validate_unknown_volume,
    validate_confirms,
    get_capacity,
    get_capacity_with_a_request,
    get_capacity_after_create,
)
