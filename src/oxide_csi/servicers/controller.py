"""The CSI Controller service: validate each request, call the domain, build the answer.

Every rule lives below (``oxide_csi.controller``): volume naming and idempotency in
:mod:`~oxide_csi.controller.volumes`, snapshots in :mod:`~oxide_csi.controller.snapshots`,
attaching in the attach coordinator. Errors are raised as domain exceptions and become status
codes in the interceptor. What is advertised in ControllerGetCapabilities is exactly what works:
no expansion or modification (Oxide disks cannot be resized or changed) and no GetCapacity
(the silo's figures say nothing true about what one more disk could get).
"""

from __future__ import annotations

import time
from typing import Any, Protocol, TypeAlias

import grpc

from oxide_csi.controller.list_tokens import page
from oxide_csi.controller.metadata import Source
from oxide_csi.controller.parameters import parse_parameters
from oxide_csi.controller.snapshots import SnapshotManager, VolumeSnapshot
from oxide_csi.controller.volumes import VolumeManager, VolumeRequest
from oxide_csi.csi_v1 import csi_pb2, csi_pb2_grpc
from oxide_csi.errors import FailedPrecondition, InvalidArgument, NotFound
from oxide_csi.oxide.models import Disk
from oxide_csi.servicers import access
from oxide_csi.servicers import controller_views as views
from oxide_csi.servicers.fields import require as _require
from oxide_csi.servicers.topology import check_requirements

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
Cap = csi_pb2.ControllerServiceCapability.RPC

CAPABILITIES = (
    Cap.CREATE_DELETE_VOLUME,
    Cap.PUBLISH_UNPUBLISH_VOLUME,
    Cap.LIST_VOLUMES,
    Cap.LIST_VOLUMES_PUBLISHED_NODES,
    Cap.GET_VOLUME,
    Cap.VOLUME_CONDITION,
    Cap.CREATE_DELETE_SNAPSHOT,
    Cap.LIST_SNAPSHOTS,
    Cap.CLONE_VOLUME,
    Cap.SINGLE_NODE_MULTI_WRITER,
)

#: Parameters CreateSnapshot accepts: only the ones Kubernetes adds itself.
_SNAPSHOT_PARAM_PREFIX = "csi.storage.k8s.io/"


class Attacher(Protocol):
    """What the servicer needs of the attach coordinator."""

    async def attach(
        self, disk_id: str, instance: str, *, deadline: float, known: Disk | None = None
    ) -> object: ...

    async def detach(
        self, disk_id: str, instance: str, *, deadline: float, known: Disk | None = None
    ) -> object: ...

    async def pending_attach(self, disk_id: str) -> str | None: ...


class ControllerServicer(csi_pb2_grpc.ControllerServicer):
    def __init__(
        self,
        volumes: VolumeManager,
        snapshots: SnapshotManager,
        attacher: Attacher,
        *,
        default_timeout: float = 600.0,
    ) -> None:
        self._volumes = volumes
        self._snapshots = snapshots
        self._attacher = attacher
        self._default_timeout = default_timeout

    def register(self, server: grpc.aio.Server) -> None:
        """Add this servicer to ``server``; the generated stubs stay inside the servicers."""
        csi_pb2_grpc.add_ControllerServicer_to_server(self, server)

    def _deadline(self, context: Context) -> float:
        """Absolute monotonic deadline: the caller's, or our default when it sent none."""
        remaining = context.time_remaining()
        budget = self._default_timeout if remaining is None else max(0.0, remaining)
        return time.monotonic() + budget

    # ---- volumes -------------------------------------------------------------------------

    async def CreateVolume(
        self, request: csi_pb2.CreateVolumeRequest, context: Context
    ) -> csi_pb2.CreateVolumeResponse:
        name = _require(request.name, "name")
        access.check_capabilities(request.volume_capabilities)
        params = parse_parameters(request.parameters)
        cap_fs = access.mount_fs_type(request.volume_capabilities)
        if params.fs_type and cap_fs and params.fs_type != cap_fs:
            raise InvalidArgument(
                f"parameter fsType {params.fs_type} contradicts the capability's {cap_fs}"
            )
        source, source_id = Source.BLANK, ""
        if request.HasField("volume_content_source"):
            src = request.volume_content_source
            kind = src.WhichOneof("type")
            if kind == "snapshot":
                source, source_id = (
                    Source.SNAPSHOT,
                    _require(
                        src.snapshot.snapshot_id, "volume_content_source.snapshot.snapshot_id"
                    ),
                )
            elif kind == "volume":
                source, source_id = (
                    Source.VOLUME,
                    _require(src.volume.volume_id, "volume_content_source.volume.volume_id"),
                )
            else:
                raise InvalidArgument("volume_content_source names neither snapshot nor volume")
        check_requirements(request.accessibility_requirements)
        rng = request.capacity_range
        volume = await self._volumes.create(
            VolumeRequest(
                name=name,
                required_bytes=rng.required_bytes,
                limit_bytes=rng.limit_bytes,
                block_size=params.block_size,
                fs_type=params.fs_type or cap_fs,
                source=source,
                source_id=source_id,
                pvc=params.pvc,
            ),
            deadline=self._deadline(context),
        )
        return csi_pb2.CreateVolumeResponse(volume=views.volume_message(volume))

    async def DeleteVolume(
        self, request: csi_pb2.DeleteVolumeRequest, context: Context
    ) -> csi_pb2.DeleteVolumeResponse:
        volume_id = _require(request.volume_id, "volume_id")
        await self._volumes.delete(volume_id, deadline=self._deadline(context))
        return csi_pb2.DeleteVolumeResponse()

    async def ControllerPublishVolume(
        self, request: csi_pb2.ControllerPublishVolumeRequest, context: Context
    ) -> csi_pb2.ControllerPublishVolumeResponse:
        volume_id = _require(request.volume_id, "volume_id")
        node_id = _require(request.node_id, "node_id")
        access.check_capability(request.volume_capability, request.HasField("volume_capability"))
        if request.readonly:
            raise InvalidArgument(
                "Oxide cannot attach a disk read-only; publish it read-write and mount it "
                "read-only in the pod instead"
            )
        deadline = self._deadline(context)
        volume = await self._volumes.get(volume_id, deadline=deadline)
        await self._attacher.attach(volume.disk.id, node_id, deadline=deadline, known=volume.disk)
        return csi_pb2.ControllerPublishVolumeResponse(
            publish_context=views.publish_context(volume)
        )

    async def ControllerUnpublishVolume(
        self, request: csi_pb2.ControllerUnpublishVolumeRequest, context: Context
    ) -> csi_pb2.ControllerUnpublishVolumeResponse:
        volume_id = _require(request.volume_id, "volume_id")
        deadline = self._deadline(context)
        volume = await self._volumes.find(volume_id, deadline=deadline)
        if volume is None:
            return csi_pb2.ControllerUnpublishVolumeResponse()  # gone: nothing is attached
        # No node: detach from wherever it is, or would be once a crash leftover is applied.
        node_id = (
            request.node_id
            or volume.attached_to
            or await self._attacher.pending_attach(volume.disk.id)
        )
        if node_id:
            await self._attacher.detach(
                volume.disk.id, node_id, deadline=deadline, known=volume.disk
            )
        return csi_pb2.ControllerUnpublishVolumeResponse()

    async def ValidateVolumeCapabilities(
        self, request: csi_pb2.ValidateVolumeCapabilitiesRequest, context: Context
    ) -> csi_pb2.ValidateVolumeCapabilitiesResponse:
        volume_id = _require(request.volume_id, "volume_id")
        if not request.volume_capabilities:
            raise InvalidArgument("volume_capabilities must not be empty")
        volume = await self._volumes.get(volume_id, deadline=self._deadline(context))
        problems = [p for p in map(access.capability_problem, request.volume_capabilities) if p]
        try:
            parse_parameters(request.parameters)
            wanted_fs = access.mount_fs_type(request.volume_capabilities)
        except InvalidArgument as exc:
            problems.append(exc.message)
        else:
            made_fs = volume.meta.fs_type
            if wanted_fs and made_fs and wanted_fs != made_fs:
                problems.append(f"the volume was made for {made_fs}, not {wanted_fs}")
        if problems:
            return csi_pb2.ValidateVolumeCapabilitiesResponse(message="; ".join(problems))
        confirmed = csi_pb2.ValidateVolumeCapabilitiesResponse.Confirmed(
            volume_context=request.volume_context,
            volume_capabilities=request.volume_capabilities,
            parameters=request.parameters,
        )
        return csi_pb2.ValidateVolumeCapabilitiesResponse(confirmed=confirmed)

    async def ListVolumes(
        self, request: csi_pb2.ListVolumesRequest, context: Context
    ) -> csi_pb2.ListVolumesResponse:
        deadline = self._deadline(context)
        volumes = [v async for v in self._volumes.list(deadline=deadline)]
        chosen, next_token = page(
            volumes, lambda v: v.disk.name, request.max_entries, request.starting_token
        )
        nodes = await self._volumes.node_ids(chosen, deadline=deadline)
        entries = [
            csi_pb2.ListVolumesResponse.Entry(
                volume=views.volume_message(v),
                status=csi_pb2.ListVolumesResponse.VolumeStatus(
                    published_node_ids=nodes.get(v.disk.id, []),
                    volume_condition=views.condition(v),
                ),
            )
            for v in chosen
        ]
        return csi_pb2.ListVolumesResponse(entries=entries, next_token=next_token)

    async def ControllerGetVolume(
        self, request: csi_pb2.ControllerGetVolumeRequest, context: Context
    ) -> csi_pb2.ControllerGetVolumeResponse:
        volume_id = _require(request.volume_id, "volume_id")
        deadline = self._deadline(context)
        volume = await self._volumes.get(volume_id, deadline=deadline)
        nodes = await self._volumes.node_ids([volume], deadline=deadline)
        return csi_pb2.ControllerGetVolumeResponse(
            volume=views.volume_message(volume),
            status=csi_pb2.ControllerGetVolumeResponse.VolumeStatus(
                published_node_ids=nodes.get(volume.disk.id, []),
                volume_condition=views.condition(volume),
            ),
        )

    async def ControllerGetCapabilities(
        self, request: csi_pb2.ControllerGetCapabilitiesRequest, context: Context
    ) -> csi_pb2.ControllerGetCapabilitiesResponse:
        return csi_pb2.ControllerGetCapabilitiesResponse(
            capabilities=[
                csi_pb2.ControllerServiceCapability(
                    rpc=csi_pb2.ControllerServiceCapability.RPC(type=cap)
                )
                for cap in CAPABILITIES
            ]
        )

    # ---- snapshots -----------------------------------------------------------------------

    async def CreateSnapshot(
        self, request: csi_pb2.CreateSnapshotRequest, context: Context
    ) -> csi_pb2.CreateSnapshotResponse:
        source = _require(request.source_volume_id, "source_volume_id")
        name = _require(request.name, "name")
        unknown = sorted(k for k in request.parameters if not k.startswith(_SNAPSHOT_PARAM_PREFIX))
        if unknown:
            raise InvalidArgument(f"unknown snapshot parameter(s): {', '.join(unknown)}")
        found = await self._snapshots.create(name, source, deadline=self._deadline(context))
        return csi_pb2.CreateSnapshotResponse(snapshot=views.snapshot_message(found))

    async def DeleteSnapshot(
        self, request: csi_pb2.DeleteSnapshotRequest, context: Context
    ) -> csi_pb2.DeleteSnapshotResponse:
        snapshot_id = _require(request.snapshot_id, "snapshot_id")
        await self._snapshots.delete(snapshot_id, deadline=self._deadline(context))
        return csi_pb2.DeleteSnapshotResponse()

    async def ListSnapshots(
        self, request: csi_pb2.ListSnapshotsRequest, context: Context
    ) -> csi_pb2.ListSnapshotsResponse:
        deadline = self._deadline(context)
        found: list[VolumeSnapshot]
        if request.snapshot_id:
            one = await self._find_snapshot_quietly(request.snapshot_id, deadline)
            found = [one] if one is not None else []
        else:
            found = [s async for s in self._snapshots.list(deadline=deadline)]
        if request.source_volume_id:
            wanted = request.source_volume_id.lower()
            found = [s for s in found if s.snapshot.disk_id.lower() == wanted]
        chosen, next_token = page(
            found, lambda s: s.snapshot.name, request.max_entries, request.starting_token
        )
        return csi_pb2.ListSnapshotsResponse(
            entries=[
                csi_pb2.ListSnapshotsResponse.Entry(snapshot=views.snapshot_message(s))
                for s in chosen
            ],
            next_token=next_token,
        )

    async def _find_snapshot_quietly(
        self, snapshot_id: str, deadline: float
    ) -> VolumeSnapshot | None:
        """ListSnapshots by id: an unknown or foreign id is an empty list, not an error."""
        try:
            return await self._snapshots.find(snapshot_id, deadline=deadline)
        except (NotFound, FailedPrecondition):  # one not made by us is simply not listed
            return None
