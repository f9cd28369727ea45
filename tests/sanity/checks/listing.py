"""Controller: ListVolumes (pagination, tokens, status fields) and ControllerGetVolume."""

from __future__ import annotations

from oxide_csi.csi_v1 import csi_pb2
from tests.sanity.checks.common import list_volume_pages, unknown_id
from tests.sanity.driver import CheckFailed, Code, ControllerCap, Driver
from tests.sanity.resources import Resources

_LIST = ControllerCap.LIST_VOLUMES
_GET = ControllerCap.GET_VOLUME


def _condition_ok(condition: csi_pb2.VolumeCondition, what: str) -> None:
    if not condition.message:
        raise CheckFailed(f"{what}: volume_condition.message is REQUIRED but empty")
    if condition.abnormal:
        raise CheckFailed(f"{what}: a new, unused volume is reported abnormal: {condition.message}")


def list_volumes_fields(d: Driver, r: Resources) -> None:
    """A created volume is listed with its id and capacity; entries carry status when
    LIST_VOLUMES_PUBLISHED_NODES is advertised, and a volume_condition with VOLUME_CONDITION."""
    d.require_controller(_LIST, ControllerCap.CREATE_DELETE_VOLUME)
    volume = r.new_volume("list")
    entries = [e for page in list_volume_pages(d) for e in page]
    mine = [e for e in entries if e.volume.volume_id == volume.volume_id]
    if len(mine) != 1:
        raise CheckFailed(f"the new volume is listed {len(mine)} times, expected once")
    entry = mine[0]
    if entry.volume.capacity_bytes != volume.capacity_bytes:
        raise CheckFailed("ListVolumes reports a different capacity than CreateVolume")
    published_nodes = d.has_controller(ControllerCap.LIST_VOLUMES_PUBLISHED_NODES)
    if published_nodes and not entry.HasField("status"):
        raise CheckFailed("LIST_VOLUMES_PUBLISHED_NODES is advertised but status is missing")
    if published_nodes and list(entry.status.published_node_ids):
        raise CheckFailed("a volume never published lists published_node_ids")
    if d.has_controller(ControllerCap.VOLUME_CONDITION):
        if not entry.status.HasField("volume_condition"):
            raise CheckFailed("VOLUME_CONDITION is advertised but volume_condition is missing")
        _condition_ok(entry.status.volume_condition, "ListVolumes")


def list_volumes_pagination(d: Driver, r: Resources) -> None:
    """max_entries bounds each page; next_token leads through every volume exactly once."""
    d.require_controller(_LIST, ControllerCap.CREATE_DELETE_VOLUME)
    created = {r.new_volume(f"page{i}").volume_id for i in range(3)}
    everything = [e.volume.volume_id for page in list_volume_pages(d) for e in page]
    paged = list_volume_pages(d, max_entries=2)
    ids = [e.volume.volume_id for page in paged for e in page]
    if len(ids) != len(set(ids)):
        raise CheckFailed("paging with max_entries=2 returned a volume twice")
    if not created <= set(ids):
        raise CheckFailed(f"paging with max_entries=2 missed {sorted(created - set(ids))}")
    if set(ids) != set(everything):
        raise CheckFailed("paging with max_entries=2 lists other volumes than one full page")
    if len(everything) > 2 and len(paged) < 2:
        raise CheckFailed("more volumes than max_entries, but no next_token was returned")


def list_volumes_bad_token(d: Driver, r: Resources) -> None:
    """A starting_token the plugin never issued is ABORTED."""
    d.require_controller(_LIST)
    request = csi_pb2.ListVolumesRequest(starting_token="sanity-not-a-token-" + unknown_id())
    d.expect_error(Code.ABORTED, "ListVolumes", request, "with a made-up starting_token")


def list_volumes_negative_max(d: Driver, r: Resources) -> None:
    """max_entries MUST NOT be negative: INVALID_ARGUMENT."""
    d.require_controller(_LIST)
    request = csi_pb2.ListVolumesRequest(max_entries=-1)
    d.expect_error(Code.INVALID_ARGUMENT, "ListVolumes", request, "with max_entries=-1")


def get_volume_requires_id(d: Driver, r: Resources) -> None:
    """ControllerGetVolume: volume_id is REQUIRED."""
    d.require_controller(_GET)
    request = csi_pb2.ControllerGetVolumeRequest()
    d.expect_error(Code.INVALID_ARGUMENT, "ControllerGetVolume", request, "without a volume_id")


def get_volume_unknown(d: Driver, r: Resources) -> None:
    """ControllerGetVolume of a volume that does not exist is NOT_FOUND."""
    d.require_controller(_GET)
    request = csi_pb2.ControllerGetVolumeRequest(volume_id=unknown_id())
    d.expect_error(Code.NOT_FOUND, "ControllerGetVolume", request, "for an unknown volume")


def get_volume_fields(d: Driver, r: Resources) -> None:
    """ControllerGetVolume returns the volume and its (REQUIRED) status, with a
    volume_condition when VOLUME_CONDITION is advertised."""
    d.require_controller(_GET, ControllerCap.CREATE_DELETE_VOLUME)
    volume = r.new_volume("get")
    reply = d.ok(
        "ControllerGetVolume", csi_pb2.ControllerGetVolumeRequest(volume_id=volume.volume_id)
    )
    if reply.volume.volume_id != volume.volume_id:
        raise CheckFailed(f"ControllerGetVolume answered for {reply.volume.volume_id!r}")
    if reply.volume.capacity_bytes != volume.capacity_bytes:
        raise CheckFailed("ControllerGetVolume reports a different capacity than CreateVolume")
    if dict(reply.volume.volume_context) != dict(volume.volume_context):
        raise CheckFailed("ControllerGetVolume reports a different volume_context")
    if not reply.HasField("status"):
        raise CheckFailed("ControllerGetVolume: status is REQUIRED but missing")
    if d.has_controller(ControllerCap.VOLUME_CONDITION):
        if not reply.status.HasField("volume_condition"):
            raise CheckFailed("VOLUME_CONDITION is advertised but volume_condition is missing")
        _condition_ok(reply.status.volume_condition, "ControllerGetVolume")


CHECKS = (
    list_volumes_fields,
    list_volumes_pagination,
    list_volumes_bad_token,
    list_volumes_negative_max,
    get_volume_requires_id,
    get_volume_unknown,
    get_volume_fields,
)
