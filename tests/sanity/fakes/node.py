"""The fake's Node service: the spec's bookkeeping rules, with directories instead of mounts.

It cannot mount anything, so the lifecycle checks (which look for a real mount or block
device) are not run against it; everything else is.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

import grpc

from oxide_csi.csi_v1 import csi_pb2, csi_pb2_grpc
from tests.sanity.fakes.controller import (
    MAX_VOLUMES_PER_NODE,
    NODE_ID,
    NODE_TOPOLOGY,
    FakeState,
    fail,
    require,
)

NodeCap = csi_pb2.NodeServiceCapability.RPC
AccessMode = csi_pb2.VolumeCapability.AccessMode


class FakeNode(csi_pb2_grpc.NodeServicer):
    capabilities = (
        NodeCap.STAGE_UNSTAGE_VOLUME,
        NodeCap.GET_VOLUME_STATS,
        NodeCap.SINGLE_NODE_MULTI_WRITER,
    )
    max_volumes_per_node = MAX_VOLUMES_PER_NODE

    def __init__(self, state: FakeState) -> None:
        self.state = state

    def NodeGetCapabilities(self, request: Any, context: Any) -> Any:
        return csi_pb2.NodeGetCapabilitiesResponse(
            capabilities=[
                csi_pb2.NodeServiceCapability(rpc=NodeCap(type=c)) for c in self.capabilities
            ]
        )

    def NodeGetInfo(self, request: Any, context: Any) -> Any:
        return csi_pb2.NodeGetInfoResponse(
            node_id=NODE_ID,
            max_volumes_per_node=self.max_volumes_per_node,
            accessible_topology=NODE_TOPOLOGY,
        )

    def known(self, volume_id: str, context: Any) -> None:
        if volume_id not in self.state.volumes:
            fail(context, grpc.StatusCode.NOT_FOUND, f"volume {volume_id} does not exist")

    def NodeStageVolume(self, request: Any, context: Any) -> Any:
        require(context, request.volume_id, "volume_id")
        require(context, request.staging_target_path, "staging_target_path")
        require(context, request.HasField("volume_capability"), "volume_capability")
        key = (request.volume_id, request.staging_target_path)
        with self.state.lock:
            self.known(request.volume_id, context)
            staged = self.state.staged.get(key)
            if staged is not None and staged != request.volume_capability:
                fail(context, grpc.StatusCode.ALREADY_EXISTS, "staged differently")
            self.state.staged[key] = request.volume_capability
        return csi_pb2.NodeStageVolumeResponse()

    def NodeUnstageVolume(self, request: Any, context: Any) -> Any:
        require(context, request.volume_id, "volume_id")
        require(context, request.staging_target_path, "staging_target_path")
        with self.state.lock:
            self.state.staged.pop((request.volume_id, request.staging_target_path), None)
        return csi_pb2.NodeUnstageVolumeResponse()

    def NodePublishVolume(self, request: Any, context: Any) -> Any:
        require(context, request.volume_id, "volume_id")
        require(context, request.target_path, "target_path")
        require(context, request.HasField("volume_capability"), "volume_capability")
        if not request.staging_target_path:
            fail(context, grpc.StatusCode.FAILED_PRECONDITION, "staging_target_path is not set")
        key = (request.volume_id, request.target_path)
        wanted = (request.volume_capability.SerializeToString(), request.readonly)
        with self.state.lock:
            self.known(request.volume_id, context)
            if (request.volume_id, request.staging_target_path) not in self.state.staged:
                fail(context, grpc.StatusCode.FAILED_PRECONDITION, "volume is not staged")
            existing = self.state.node_published.get(key)
            if existing is not None and existing != wanted:
                fail(context, grpc.StatusCode.ALREADY_EXISTS, "published differently")
            self.check_second_target(request, context)
            self.make_target(request)
            self.state.node_published[key] = wanted
        return csi_pb2.NodePublishVolumeResponse()

    def check_second_target(self, request: Any, context: Any) -> None:
        """Only a multi-writer volume may be published at more than one target path."""
        others = [
            target
            for volume_id, target in self.state.node_published
            if volume_id == request.volume_id and target != request.target_path
        ]
        multi = request.volume_capability.access_mode.mode == AccessMode.SINGLE_NODE_MULTI_WRITER
        if others and not multi:
            fail(context, grpc.StatusCode.FAILED_PRECONDITION, "published at another target")

    def make_target(self, request: Any) -> None:
        if request.volume_capability.WhichOneof("access_type") == "block":
            open(request.target_path, "ab").close()
        else:
            os.makedirs(request.target_path, exist_ok=True)

    def NodeUnpublishVolume(self, request: Any, context: Any) -> Any:
        require(context, request.volume_id, "volume_id")
        require(context, request.target_path, "target_path")
        with self.state.lock:
            if self.state.node_published.pop((request.volume_id, request.target_path), None):
                self.remove_target(request.target_path)
        return csi_pb2.NodeUnpublishVolumeResponse()

    def remove_target(self, path: str) -> None:
        if os.path.isdir(path):
            shutil.rmtree(path)  # the fake's target is a plain directory, not a mount
        elif os.path.lexists(path):
            os.unlink(path)

    def NodeGetVolumeStats(self, request: Any, context: Any) -> Any:
        require(context, request.volume_id, "volume_id")
        require(context, request.volume_path, "volume_path")
        with self.state.lock:
            if (request.volume_id, request.volume_path) not in self.state.node_published:
                fail(context, grpc.StatusCode.NOT_FOUND, "volume is not at that path")
            size = self.state.volumes[request.volume_id].volume.capacity_bytes
        usage = csi_pb2.VolumeUsage(
            unit=csi_pb2.VolumeUsage.BYTES, total=size, used=0, available=size
        )
        return csi_pb2.NodeGetVolumeStatsResponse(usage=[usage])
