"""Steps several checks share: listing every page, and taking a volume to a node and back.

The attach/detach flow is the CO's sequence from the spec: ControllerPublishVolume (when the
controller offers PUBLISH_UNPUBLISH_VOLUME), NodeStageVolume (when the node offers
STAGE_UNSTAGE_VOLUME), NodePublishVolume; and the reverse.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from oxide_csi.csi_v1 import csi_pb2
from tests.sanity.driver import CheckFailed, ControllerCap, Driver, NodeCap
from tests.sanity.resources import Resources

#: A CSI name of the largest size the spec's general limit allows (128 bytes).
MAX_NAME_BYTES = 128
_MAX_PAGES = 1000


def unknown_id() -> str:
    """An id no driver has issued, in the most common id format (a UUID)."""
    return str(uuid.uuid4())


def max_length_name(label: str) -> str:
    head = f"sanity-{label}-{uuid.uuid4().hex}-"
    return (head + "x" * MAX_NAME_BYTES)[:MAX_NAME_BYTES]


def list_volume_pages(
    d: Driver, max_entries: int = 0
) -> list[list[csi_pb2.ListVolumesResponse.Entry]]:
    """Every page of ListVolumes, following next_token until it is empty."""
    pages: list[list[csi_pb2.ListVolumesResponse.Entry]] = []
    token = ""
    for _ in range(_MAX_PAGES):
        reply = d.ok(
            "ListVolumes",
            csi_pb2.ListVolumesRequest(max_entries=max_entries, starting_token=token),
        )
        if max_entries and len(reply.entries) > max_entries:
            raise CheckFailed(
                f"ListVolumes returned {len(reply.entries)} entries, max_entries={max_entries}"
            )
        pages.append(list(reply.entries))
        token = reply.next_token
        if not token:
            return pages
    raise CheckFailed(f"ListVolumes never stopped returning a next_token ({_MAX_PAGES} pages)")


def list_snapshot_pages(
    d: Driver, max_entries: int = 0, *, snapshot_id: str = "", source_volume_id: str = ""
) -> list[list[csi_pb2.Snapshot]]:
    pages: list[list[csi_pb2.Snapshot]] = []
    token = ""
    for _ in range(_MAX_PAGES):
        request = csi_pb2.ListSnapshotsRequest(
            max_entries=max_entries,
            starting_token=token,
            snapshot_id=snapshot_id,
            source_volume_id=source_volume_id,
        )
        reply = d.ok("ListSnapshots", request)
        if max_entries and len(reply.entries) > max_entries:
            raise CheckFailed(
                f"ListSnapshots returned {len(reply.entries)} entries, max_entries={max_entries}"
            )
        pages.append([e.snapshot for e in reply.entries])
        token = reply.next_token
        if not token:
            return pages
    raise CheckFailed(f"ListSnapshots never stopped returning a next_token ({_MAX_PAGES} pages)")


def listed_snapshot_ids(
    d: Driver, *, snapshot_id: str = "", source_volume_id: str = ""
) -> list[str]:
    pages = list_snapshot_pages(d, snapshot_id=snapshot_id, source_volume_id=source_volume_id)
    return [s.snapshot_id for page in pages for s in page]


@dataclass
class Attached:
    """A volume made usable on this node, with everything needed to undo it."""

    volume: csi_pb2.Volume
    capability: csi_pb2.VolumeCapability
    node_id: str
    publish_context: dict[str, str] = field(default_factory=dict)
    staging_path: str = ""
    target_path: str = ""

    @property
    def volume_id(self) -> str:
        return self.volume.volume_id


def controller_publish(
    d: Driver, r: Resources, volume: csi_pb2.Volume, cap: csi_pb2.VolumeCapability
) -> dict[str, str]:
    if not d.has_controller(ControllerCap.PUBLISH_UNPUBLISH_VOLUME):
        return {}
    reply = r.call(
        "ControllerPublishVolume",
        csi_pb2.ControllerPublishVolumeRequest(
            volume_id=volume.volume_id,
            node_id=d.node_id(),
            volume_capability=cap,
            volume_context=volume.volume_context,
        ),
    )
    return dict(reply.publish_context)


def stage_request(a: Attached) -> csi_pb2.NodeStageVolumeRequest:
    return csi_pb2.NodeStageVolumeRequest(
        volume_id=a.volume_id,
        publish_context=a.publish_context,
        staging_target_path=a.staging_path,
        volume_capability=a.capability,
        volume_context=a.volume.volume_context,
    )


def publish_request(a: Attached, *, readonly: bool = False) -> csi_pb2.NodePublishVolumeRequest:
    return csi_pb2.NodePublishVolumeRequest(
        volume_id=a.volume_id,
        publish_context=a.publish_context,
        staging_target_path=a.staging_path,
        target_path=a.target_path,
        volume_capability=a.capability,
        readonly=readonly,
        volume_context=a.volume.volume_context,
    )


def attach(
    d: Driver,
    r: Resources,
    volume: csi_pb2.Volume,
    cap: csi_pb2.VolumeCapability,
    *,
    publish: bool = True,
) -> Attached:
    """Controller publish, stage and (unless ``publish`` is false) node publish."""
    a = Attached(volume=volume, capability=cap, node_id=d.node_id())
    a.publish_context = controller_publish(d, r, volume, cap)
    if d.has_node(NodeCap.STAGE_UNSTAGE_VOLUME):
        a.staging_path = r.staging_path()
        r.call("NodeStageVolume", stage_request(a))
    a.target_path = r.target_path()
    if publish:
        r.call("NodePublishVolume", publish_request(a))
    return a


def detach(d: Driver, r: Resources, a: Attached) -> None:
    """Node unpublish, unstage, controller unpublish: the spec's order."""
    r.call(
        "NodeUnpublishVolume",
        csi_pb2.NodeUnpublishVolumeRequest(volume_id=a.volume_id, target_path=a.target_path),
    )
    if a.staging_path:
        r.call(
            "NodeUnstageVolume",
            csi_pb2.NodeUnstageVolumeRequest(
                volume_id=a.volume_id, staging_target_path=a.staging_path
            ),
        )
    if d.has_controller(ControllerCap.PUBLISH_UNPUBLISH_VOLUME):
        r.call(
            "ControllerUnpublishVolume",
            csi_pb2.ControllerUnpublishVolumeRequest(volume_id=a.volume_id, node_id=a.node_id),
        )
