"""An in-memory CSI driver (Identity + Controller) that follows the specification.

Why a correct fake: the meta-tests first show that the checks pass against it (a check that
fails a correct driver is worthless), then break one behaviour at a time in a subclass and
show that the matching check fails. It is a model of the rules, not of any storage.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, NoReturn

import grpc

from oxide_csi.csi_v1 import csi_pb2, csi_pb2_grpc

GIB = 1 << 30
NODE_ID = "fake-node-1"
MAX_VOLUMES_PER_NODE = 3
#: The fake's whole storage; GetCapacity answers it minus what the volumes take.
CAPACITY = 1 << 40
NODE_TOPOLOGY = csi_pb2.Topology(segments={"fake.sanity.example/zone": "a"})
Cap = csi_pb2.ControllerServiceCapability.RPC
_Service = csi_pb2.PluginCapability.Service


def fail(context: Any, code: grpc.StatusCode, message: str) -> NoReturn:
    context.abort(code, message)
    raise AssertionError("unreachable")  # context.abort raises


def require(context: Any, value: object, name: str) -> None:
    if not value:
        fail(context, grpc.StatusCode.INVALID_ARGUMENT, f"{name} is required")


@dataclass
class FakeVolume:
    volume: csi_pb2.Volume
    name: str
    source: str = ""


@dataclass
class FakeState:
    """Everything the fake knows; one lock, since the grpc server is threaded."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    volumes: dict[str, FakeVolume] = field(default_factory=dict)
    snapshots: dict[str, tuple[str, csi_pb2.Snapshot]] = field(default_factory=dict)
    published: dict[str, dict[str, bool]] = field(default_factory=dict)  # volume -> node -> ro
    staged: dict[tuple[str, str], csi_pb2.VolumeCapability] = field(default_factory=dict)
    node_published: dict[tuple[str, str], tuple[bytes, bool]] = field(default_factory=dict)

    def on_node(self, node_id: str) -> int:
        return sum(node_id in nodes for nodes in self.published.values())


def page(items: list[Any], request: Any, context: Any) -> tuple[list[Any], str]:
    """Offset tokens ("fake:N"); anything else is ABORTED."""
    if request.max_entries < 0:
        fail(context, grpc.StatusCode.INVALID_ARGUMENT, "max_entries must not be negative")
    start = 0
    if request.starting_token:
        head, _, number = request.starting_token.partition(":")
        if head != "fake" or not number.isdigit():
            fail(context, grpc.StatusCode.ABORTED, "starting_token was not issued here")
        start = int(number)
    end = len(items) if request.max_entries == 0 else start + request.max_entries
    return items[start:end], (f"fake:{end}" if end < len(items) else "")


class FakeIdentity(csi_pb2_grpc.IdentityServicer):
    name = "fake.sanity.example"
    vendor_version = "0.0.1"

    def GetPluginInfo(self, request: Any, context: Any) -> Any:
        return csi_pb2.GetPluginInfoResponse(name=self.name, vendor_version=self.vendor_version)

    def GetPluginCapabilities(self, request: Any, context: Any) -> Any:
        services = (_Service.CONTROLLER_SERVICE, _Service.VOLUME_ACCESSIBILITY_CONSTRAINTS)
        return csi_pb2.GetPluginCapabilitiesResponse(
            capabilities=[csi_pb2.PluginCapability(service=_Service(type=t)) for t in services]
        )

    def Probe(self, request: Any, context: Any) -> Any:
        reply = csi_pb2.ProbeResponse()
        reply.ready.value = True
        return reply


class FakeController(csi_pb2_grpc.ControllerServicer):
    capabilities: tuple[Cap.Type.ValueType, ...] = (
        Cap.CREATE_DELETE_VOLUME,
        Cap.PUBLISH_UNPUBLISH_VOLUME,
        Cap.LIST_VOLUMES,
        Cap.LIST_VOLUMES_PUBLISHED_NODES,
        Cap.GET_VOLUME,
        Cap.VOLUME_CONDITION,
        Cap.CREATE_DELETE_SNAPSHOT,
        Cap.LIST_SNAPSHOTS,
        Cap.GET_SNAPSHOT,
        Cap.CLONE_VOLUME,
        Cap.PUBLISH_READONLY,
        Cap.GET_CAPACITY,
        Cap.SINGLE_NODE_MULTI_WRITER,
    )

    def __init__(self, state: FakeState) -> None:
        self.state = state

    def ControllerGetCapabilities(self, request: Any, context: Any) -> Any:
        return csi_pb2.ControllerGetCapabilitiesResponse(
            capabilities=[
                csi_pb2.ControllerServiceCapability(rpc=Cap(type=c)) for c in self.capabilities
            ]
        )

    def topology(self, requirements: Any) -> list[csi_pb2.Topology]:
        """The fake's one node is in NODE_TOPOLOGY; a volume is where that node is."""
        return [NODE_TOPOLOGY]

    def check_caps(self, caps: Any, context: Any) -> None:
        require(context, len(caps), "volume_capabilities")
        for cap in caps:
            require(context, cap.HasField("access_mode"), "access_mode")
            require(context, cap.WhichOneof("access_type"), "block or mount")

    def CreateVolume(self, request: Any, context: Any) -> Any:
        require(context, request.name, "name")
        self.check_caps(request.volume_capabilities, context)
        rng = request.capacity_range
        size = -(-max(rng.required_bytes, GIB) // GIB) * GIB
        if rng.limit_bytes and size > rng.limit_bytes:
            fail(context, grpc.StatusCode.OUT_OF_RANGE, "no size fits")
        source = request.volume_content_source.SerializeToString()
        with self.state.lock:
            for fake in self.state.volumes.values():
                if fake.name == request.name:
                    fits = fake.volume.capacity_bytes >= rng.required_bytes and (
                        not rng.limit_bytes or fake.volume.capacity_bytes <= rng.limit_bytes
                    )
                    if not fits or fake.source != source:
                        fail(context, grpc.StatusCode.ALREADY_EXISTS, "incompatible volume")
                    return csi_pb2.CreateVolumeResponse(volume=fake.volume)
            kind = request.volume_content_source.WhichOneof("type")
            src = request.volume_content_source
            if kind == "snapshot" and src.snapshot.snapshot_id not in self.state.snapshots:
                fail(context, grpc.StatusCode.NOT_FOUND, "no such snapshot")
            if kind == "volume" and src.volume.volume_id not in self.state.volumes:
                fail(context, grpc.StatusCode.NOT_FOUND, "no such volume")
            volume = csi_pb2.Volume(
                volume_id=str(uuid.uuid4()),
                capacity_bytes=size,
                volume_context={"fake": "1"},
                accessible_topology=self.topology(request.accessibility_requirements),
            )
            if kind is not None:
                volume.content_source.CopyFrom(request.volume_content_source)
            self.state.volumes[volume.volume_id] = FakeVolume(volume, request.name, source)
        return csi_pb2.CreateVolumeResponse(volume=volume)

    def DeleteVolume(self, request: Any, context: Any) -> Any:
        require(context, request.volume_id, "volume_id")
        with self.state.lock:
            self.state.volumes.pop(request.volume_id, None)
            self.state.published.pop(request.volume_id, None)
        return csi_pb2.DeleteVolumeResponse()

    def get(self, volume_id: str, context: Any) -> FakeVolume:
        fake = self.state.volumes.get(volume_id)
        if fake is None:
            fail(context, grpc.StatusCode.NOT_FOUND, f"volume {volume_id} does not exist")
        return fake

    def ControllerPublishVolume(self, request: Any, context: Any) -> Any:
        require(context, request.volume_id, "volume_id")
        require(context, request.node_id, "node_id")
        require(context, request.HasField("volume_capability"), "volume_capability")
        with self.state.lock:
            self.get(request.volume_id, context)
            if request.node_id != NODE_ID:
                fail(context, grpc.StatusCode.NOT_FOUND, "no such node")
            nodes = self.state.published.setdefault(request.volume_id, {})
            if request.node_id in nodes:
                if nodes[request.node_id] != request.readonly:
                    fail(context, grpc.StatusCode.ALREADY_EXISTS, "published differently")
            elif self.state.on_node(request.node_id) >= MAX_VOLUMES_PER_NODE:
                fail(context, grpc.StatusCode.RESOURCE_EXHAUSTED, "node is full")
            nodes[request.node_id] = request.readonly
        return csi_pb2.ControllerPublishVolumeResponse(
            publish_context={"device": f"/dev/fake/{request.volume_id}"}
        )

    def ControllerUnpublishVolume(self, request: Any, context: Any) -> Any:
        require(context, request.volume_id, "volume_id")
        with self.state.lock:
            nodes = self.state.published.get(request.volume_id, {})
            if request.node_id:
                nodes.pop(request.node_id, None)
            else:
                nodes.clear()
        return csi_pb2.ControllerUnpublishVolumeResponse()

    def ValidateVolumeCapabilities(self, request: Any, context: Any) -> Any:
        require(context, request.volume_id, "volume_id")
        require(context, len(request.volume_capabilities), "volume_capabilities")
        with self.state.lock:
            self.get(request.volume_id, context)
        confirmed = csi_pb2.ValidateVolumeCapabilitiesResponse.Confirmed(
            volume_capabilities=request.volume_capabilities
        )
        return csi_pb2.ValidateVolumeCapabilitiesResponse(confirmed=confirmed)

    def status(self, volume_id: str) -> dict[str, Any]:
        return {
            "published_node_ids": sorted(self.state.published.get(volume_id, {})),
            "volume_condition": csi_pb2.VolumeCondition(abnormal=False, message="fine"),
        }

    def ListVolumes(self, request: Any, context: Any) -> Any:
        with self.state.lock:
            fakes = sorted(self.state.volumes.values(), key=lambda f: f.volume.volume_id)
            chosen, token = page(fakes, request, context)
            entries = [
                csi_pb2.ListVolumesResponse.Entry(
                    volume=f.volume,
                    status=csi_pb2.ListVolumesResponse.VolumeStatus(
                        **self.status(f.volume.volume_id)
                    ),
                )
                for f in chosen
            ]
        return csi_pb2.ListVolumesResponse(entries=entries, next_token=token)

    def ControllerGetVolume(self, request: Any, context: Any) -> Any:
        require(context, request.volume_id, "volume_id")
        with self.state.lock:
            fake = self.get(request.volume_id, context)
            status = csi_pb2.ControllerGetVolumeResponse.VolumeStatus(
                **self.status(request.volume_id)
            )
        return csi_pb2.ControllerGetVolumeResponse(volume=fake.volume, status=status)

    def GetCapacity(self, request: Any, context: Any) -> Any:
        with self.state.lock:
            used = sum(f.volume.capacity_bytes for f in self.state.volumes.values())
        available = CAPACITY - used
        reply = csi_pb2.GetCapacityResponse(available_capacity=available)
        reply.maximum_volume_size.value = available
        reply.minimum_volume_size.value = GIB
        return reply

    def GetSnapshot(self, request: Any, context: Any) -> Any:
        require(context, request.snapshot_id, "snapshot_id")
        with self.state.lock:
            found = self.state.snapshots.get(request.snapshot_id)
        if found is None:
            fail(context, grpc.StatusCode.NOT_FOUND, "no such snapshot")
        return csi_pb2.GetSnapshotResponse(snapshot=found[1])

    def CreateSnapshot(self, request: Any, context: Any) -> Any:
        require(context, request.source_volume_id, "source_volume_id")
        require(context, request.name, "name")
        with self.state.lock:
            for name, snapshot in self.state.snapshots.values():
                if name == request.name:
                    if snapshot.source_volume_id != request.source_volume_id:
                        fail(context, grpc.StatusCode.ALREADY_EXISTS, "other source")
                    return csi_pb2.CreateSnapshotResponse(snapshot=snapshot)
            source = self.get(request.source_volume_id, context)
            snapshot = csi_pb2.Snapshot(
                snapshot_id=str(uuid.uuid4()),
                source_volume_id=request.source_volume_id,
                size_bytes=source.volume.capacity_bytes,
                ready_to_use=True,
            )
            snapshot.creation_time.FromSeconds(int(time.time()))
            self.state.snapshots[snapshot.snapshot_id] = (request.name, snapshot)
        return csi_pb2.CreateSnapshotResponse(snapshot=snapshot)

    def DeleteSnapshot(self, request: Any, context: Any) -> Any:
        require(context, request.snapshot_id, "snapshot_id")
        with self.state.lock:
            self.state.snapshots.pop(request.snapshot_id, None)
        return csi_pb2.DeleteSnapshotResponse()

    def ListSnapshots(self, request: Any, context: Any) -> Any:
        with self.state.lock:
            found = sorted(
                (s for _, s in self.state.snapshots.values()), key=lambda s: s.snapshot_id
            )
        if request.snapshot_id:
            found = [s for s in found if s.snapshot_id == request.snapshot_id]
        if request.source_volume_id:
            found = [s for s in found if s.source_volume_id == request.source_volume_id]
        chosen, token = page(found, request, context)
        return csi_pb2.ListSnapshotsResponse(
            entries=[csi_pb2.ListSnapshotsResponse.Entry(snapshot=s) for s in chosen],
            next_token=token,
        )
