"""The CSI calls ``oxide-csi demo`` makes, with requests built as Kubernetes builds them.

Why apart from the demo's steps: the steps are about order, progress and clean-up; what a
well-formed NodeStageVolume or ControllerPublishVolume carries (capability, contexts, paths)
is another concern, and the final check needs some of the same calls. One filesystem volume
capability serves every call: ext4, single-node writer, as a ReadWriteOnce claim has it.
"""

from __future__ import annotations

from pathlib import Path

import grpc

from oxide_csi.csi_v1 import csi_pb2, csi_pb2_grpc

_Access = csi_pb2.VolumeCapability.AccessMode
CAPABILITY = csi_pb2.VolumeCapability(
    mount=csi_pb2.VolumeCapability.MountVolume(fs_type="ext4"),
    access_mode=_Access(mode=_Access.SINGLE_NODE_WRITER),
)


class CsiCalls:
    def __init__(self, channel: grpc.Channel, timeout: float) -> None:
        self.identity = csi_pb2_grpc.IdentityStub(channel)
        self.controller = csi_pb2_grpc.ControllerStub(channel)
        self.node = csi_pb2_grpc.NodeStub(channel)
        self.timeout = timeout

    def plugin(self) -> str:
        info = self.identity.GetPluginInfo(csi_pb2.GetPluginInfoRequest(), timeout=30)
        return f"{info.name} {info.vendor_version}"

    def node_id(self) -> str:
        return self.node.NodeGetInfo(csi_pb2.NodeGetInfoRequest(), timeout=30).node_id

    def create_volume(self, name: str, size: int, snapshot_id: str = "") -> csi_pb2.Volume:
        request = csi_pb2.CreateVolumeRequest(
            name=name,
            capacity_range=csi_pb2.CapacityRange(required_bytes=size),
            volume_capabilities=[CAPABILITY],
        )
        if snapshot_id:
            request.volume_content_source.snapshot.snapshot_id = snapshot_id
        return self.controller.CreateVolume(request, timeout=self.timeout).volume

    def delete_volume(self, volume_id: str) -> None:
        request = csi_pb2.DeleteVolumeRequest(volume_id=volume_id)
        self.controller.DeleteVolume(request, timeout=self.timeout)

    def attach(self, volume: csi_pb2.Volume, node_id: str) -> dict[str, str]:
        """ControllerPublishVolume; the publish context the node needs."""
        request = csi_pb2.ControllerPublishVolumeRequest(
            volume_id=volume.volume_id,
            node_id=node_id,
            volume_capability=CAPABILITY,
            volume_context=volume.volume_context,
        )
        reply = self.controller.ControllerPublishVolume(request, timeout=self.timeout)
        return dict(reply.publish_context)

    def detach(self, volume_id: str, node_id: str) -> None:
        request = csi_pb2.ControllerUnpublishVolumeRequest(volume_id=volume_id, node_id=node_id)
        self.controller.ControllerUnpublishVolume(request, timeout=self.timeout)

    def stage(self, volume: csi_pb2.Volume, context: dict[str, str], staging: Path) -> None:
        request = csi_pb2.NodeStageVolumeRequest(
            volume_id=volume.volume_id,
            publish_context=context,
            staging_target_path=str(staging),
            volume_capability=CAPABILITY,
            volume_context=volume.volume_context,
        )
        self.node.NodeStageVolume(request, timeout=self.timeout)

    def unstage(self, volume_id: str, staging: Path) -> None:
        request = csi_pb2.NodeUnstageVolumeRequest(
            volume_id=volume_id, staging_target_path=str(staging)
        )
        self.node.NodeUnstageVolume(request, timeout=self.timeout)

    def publish(
        self, volume: csi_pb2.Volume, context: dict[str, str], staging: Path, target: Path
    ) -> None:
        request = csi_pb2.NodePublishVolumeRequest(
            volume_id=volume.volume_id,
            publish_context=context,
            staging_target_path=str(staging),
            target_path=str(target),
            volume_capability=CAPABILITY,
            volume_context=volume.volume_context,
        )
        self.node.NodePublishVolume(request, timeout=self.timeout)

    def unpublish(self, volume_id: str, target: Path) -> None:
        request = csi_pb2.NodeUnpublishVolumeRequest(volume_id=volume_id, target_path=str(target))
        self.node.NodeUnpublishVolume(request, timeout=self.timeout)

    def capacity(self, volume_id: str, path: Path) -> int:
        """The filesystem's size in bytes, as NodeGetVolumeStats reports it."""
        request = csi_pb2.NodeGetVolumeStatsRequest(volume_id=volume_id, volume_path=str(path))
        stats = self.node.NodeGetVolumeStats(request, timeout=30)
        return next((u.total for u in stats.usage if u.unit == u.BYTES), 0)

    def create_snapshot(self, source_volume_id: str, name: str) -> csi_pb2.Snapshot:
        request = csi_pb2.CreateSnapshotRequest(source_volume_id=source_volume_id, name=name)
        return self.controller.CreateSnapshot(request, timeout=self.timeout).snapshot

    def snapshot(self, snapshot_id: str) -> csi_pb2.Snapshot | None:
        request = csi_pb2.ListSnapshotsRequest(snapshot_id=snapshot_id)
        entries = self.controller.ListSnapshots(request, timeout=60).entries
        return entries[0].snapshot if entries else None

    def delete_snapshot(self, snapshot_id: str) -> None:
        request = csi_pb2.DeleteSnapshotRequest(snapshot_id=snapshot_id)
        self.controller.DeleteSnapshot(request, timeout=self.timeout)

    def volume_ids(self) -> set[str]:
        """Every volume ListVolumes reports, all pages."""
        found: set[str] = set()
        token = ""
        while True:
            request = csi_pb2.ListVolumesRequest(starting_token=token)
            page = self.controller.ListVolumes(request, timeout=60)
            found.update(entry.volume.volume_id for entry in page.entries)
            if not (token := page.next_token):
                return found
