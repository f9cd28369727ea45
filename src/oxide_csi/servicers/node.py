"""The CSI Node service: validate each request, then let the node domain do the work.

The rules live in :mod:`oxide_csi.node` (finding and verifying the device, formatting only a
provably new disk, mounting, stats); this module checks the request fields in the order the
spec and csi-sanity expect, puts every path through :class:`~oxide_csi.node.paths.PathGuard`,
runs the blocking domain calls in worker threads, and serialises calls per volume so that a
retried stage cannot race the first attempt.

Error codes, per CSI v1.12 and chosen where the spec leaves room:

* a missing field or an unsupported capability: INVALID_ARGUMENT;
* a disk with a filesystem other than the one asked for, or holding data that is not a
  filesystem, or blank but not known to be new: FAILED_PRECONDITION ("exceeds capabilities":
  the volume cannot be used as asked, and a human must decide -- never a reformat);
* a staging or target path already used in an incompatible way: ALREADY_EXISTS;
* publishing a volume that is not staged (or a missing staging path): FAILED_PRECONDITION;
* the device not appearing in time, carrying another serial, or unreadable: UNAVAILABLE.
  These are transient from the node's point of view (the attach may still be finishing, a
  device name may have been reused, a path may recover) and the CO retries with backoff;
  kubelet also treats UNAVAILABLE as "may be in progress" and so cleans up with an unstage.
* NodeGetVolumeStats on a path that is absent, or that cannot hold a volume of ours (outside
  the kubelet directory, relative): NOT_FOUND ("volume does not exist on the specified path").
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, TypeAlias, TypeVar

import grpc

from oxide_csi.csi_v1 import csi_pb2, csi_pb2_grpc
from oxide_csi.errors import FailedPrecondition, InvalidArgument, NotFound
from oxide_csi.inflight import KeyedLocks
from oxide_csi.node.context import expected_serial, volume_facts
from oxide_csi.node.devices import BlockDevice, DeviceFinder
from oxide_csi.node.mounts import Mounter
from oxide_csi.node.paths import PathGuard
from oxide_csi.node.publish import Publisher
from oxide_csi.node.stage import Stager
from oxide_csi.node.stats import VolumeStats, volume_stats
from oxide_csi.servicers import access
from oxide_csi.servicers.fields import require as _require
from oxide_csi.servicers.topology import node_topology
from oxide_csi.volume_contract import CTX_SERIAL, is_managed_serial

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
Cap = csi_pb2.NodeServiceCapability.RPC
Usage = csi_pb2.VolumeUsage
T = TypeVar("T")

CAPABILITIES = (
    Cap.STAGE_UNSTAGE_VOLUME,
    Cap.GET_VOLUME_STATS,
    Cap.VOLUME_CONDITION,
    Cap.SINGLE_NODE_MULTI_WRITER,
)

#: Seconds to leave of the caller's deadline when waiting for a device, so the answer (an
#: UNAVAILABLE naming the serial) reaches the caller instead of a bare DEADLINE_EXCEEDED.
_DEADLINE_MARGIN = 1.0


async def _in_thread(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """Run blocking domain work in a worker thread, and outlast a cancelled call.

    A thread cannot be stopped, so when the call is cancelled (deadline, client gone) this
    still waits for the work to finish before letting the cancellation through: the caller
    holds the volume's lock, and a retry must not start probing a disk while mkfs or
    resize2fs from the first attempt is still writing to it.
    """
    work = asyncio.ensure_future(asyncio.to_thread(fn, *args, **kwargs))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        while not work.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([work])
        work.exception()  # retrieved: nobody is left to report it to
        raise


class NodeServicer(csi_pb2_grpc.NodeServicer):
    def __init__(
        self,
        *,
        node_id: str,
        max_disks_per_instance: int,
        guard: PathGuard,
        finder: DeviceFinder,
        mounter: Mounter | None = None,
        is_managed: Callable[[str], bool] = is_managed_serial,
        attachable: bool = True,
    ) -> None:
        """``finder.timeout`` bounds how long a stage waits for the device to appear;
        ``attachable`` False keeps volumes off this node (see ``servicers.topology``)."""
        if not node_id:
            raise ValueError("node_id is required")
        self._node_id = node_id
        self._max_disks = max_disks_per_instance
        self._guard = guard
        self._finder = finder
        self._mounter = mounter or Mounter()
        self._stager = Stager(finder, self._mounter)
        self._publisher = Publisher(finder, self._mounter, scope=guard.real_kubelet_dir)
        self._is_managed = is_managed
        self._attachable = attachable
        self._locks = KeyedLocks()

    # ---- helpers -------------------------------------------------------------------------

    def register(self, server: grpc.aio.Server) -> None:
        """Add this servicer to ``server``; the generated stubs stay inside the servicers."""
        csi_pb2_grpc.add_NodeServicer_to_server(self, server)

    async def _device(self, serial: str, context: Context) -> BlockDevice:
        """The device with ``serial``, waiting for it within the caller's deadline."""
        wait = self._finder.timeout
        remaining = context.time_remaining()
        if remaining is not None:
            wait = max(0.0, min(wait, remaining - _DEADLINE_MARGIN))
        return await self._finder.wait_for_async(serial, wait)

    # ---- stage ---------------------------------------------------------------------------

    async def NodeStageVolume(
        self, request: csi_pb2.NodeStageVolumeRequest, context: Context
    ) -> csi_pb2.NodeStageVolumeResponse:
        volume_id = _require(request.volume_id, "volume_id")
        raw_staging = _require(request.staging_target_path, "staging_target_path")
        cap = request.volume_capability
        access.check_capability(cap, request.HasField("volume_capability"))
        staging = await _in_thread(self._guard.check, raw_staging, "staging_target_path")
        facts = volume_facts(request.publish_context, request.volume_context)
        async with self._locks.hold(volume_id):
            device = await self._device(facts.serial, context)
            if cap.WhichOneof("access_type") == "block":
                await _in_thread(self._stager.stage_block, device.path, facts.serial, staging)
            else:
                await _in_thread(
                    self._stager.stage_filesystem,
                    device.path,
                    facts.serial,
                    staging,
                    cap.mount.fs_type.strip().lower() or facts.fs_type,
                    list(cap.mount.mount_flags),
                    known_new=facts.known_new,
                    read_only=facts.read_only,
                )
        return csi_pb2.NodeStageVolumeResponse()

    async def NodeUnstageVolume(
        self, request: csi_pb2.NodeUnstageVolumeRequest, context: Context
    ) -> csi_pb2.NodeUnstageVolumeResponse:
        volume_id = _require(request.volume_id, "volume_id")
        raw_staging = _require(request.staging_target_path, "staging_target_path")
        staging = await _in_thread(self._guard.check, raw_staging, "staging_target_path")
        async with self._locks.hold(volume_id):
            await _in_thread(self._stager.unstage, staging)
        return csi_pb2.NodeUnstageVolumeResponse()

    # ---- publish -------------------------------------------------------------------------

    async def NodePublishVolume(
        self, request: csi_pb2.NodePublishVolumeRequest, context: Context
    ) -> csi_pb2.NodePublishVolumeResponse:
        volume_id = _require(request.volume_id, "volume_id")
        raw_target = _require(request.target_path, "target_path")
        cap = request.volume_capability
        access.check_capability(cap, request.HasField("volume_capability"))
        if not request.staging_target_path:
            raise FailedPrecondition(
                "staging_target_path is not set; this plugin stages volumes first"
            )
        target = await _in_thread(self._guard.check, raw_target, "target_path")
        staging = await _in_thread(
            self._guard.check, request.staging_target_path, "staging_target_path"
        )
        if target == staging:
            raise InvalidArgument("target_path and staging_target_path are the same path")
        exclusive = cap.access_mode.mode == access.Mode.SINGLE_NODE_SINGLE_WRITER
        async with self._locks.hold(volume_id):
            if cap.WhichOneof("access_type") == "block":
                serial = expected_serial(request.publish_context, request.volume_context)
                device = await self._device(serial, context)
                await _in_thread(
                    self._publisher.publish_block,
                    device.path,
                    serial,
                    target,
                    request.readonly,
                    exclusive=exclusive,
                )
            else:
                await _in_thread(
                    self._publisher.publish_mount,
                    staging,
                    target,
                    request.readonly,
                    list(cap.mount.mount_flags),
                    serial=_optional_serial(request),
                    exclusive=exclusive,
                )
        return csi_pb2.NodePublishVolumeResponse()

    async def NodeUnpublishVolume(
        self, request: csi_pb2.NodeUnpublishVolumeRequest, context: Context
    ) -> csi_pb2.NodeUnpublishVolumeResponse:
        volume_id = _require(request.volume_id, "volume_id")
        raw_target = _require(request.target_path, "target_path")
        target = await _in_thread(self._guard.check, raw_target, "target_path")
        async with self._locks.hold(volume_id):
            await _in_thread(self._publisher.unpublish, target)
        return csi_pb2.NodeUnpublishVolumeResponse()

    # ---- stats and info ------------------------------------------------------------------

    async def NodeGetVolumeStats(
        self, request: csi_pb2.NodeGetVolumeStatsRequest, context: Context
    ) -> csi_pb2.NodeGetVolumeStatsResponse:
        _require(request.volume_id, "volume_id")
        raw_path = _require(request.volume_path, "volume_path")
        try:
            path = await _in_thread(self._guard.check, raw_path, "volume_path")
        except InvalidArgument as exc:
            raise NotFound(f"no volume can be at {raw_path!r}: {exc}") from None
        stats = await _in_thread(volume_stats, path, self._mounter)
        return _stats_response(stats)

    async def NodeGetCapabilities(
        self, request: csi_pb2.NodeGetCapabilitiesRequest, context: Context
    ) -> csi_pb2.NodeGetCapabilitiesResponse:
        return csi_pb2.NodeGetCapabilitiesResponse(
            capabilities=[csi_pb2.NodeServiceCapability(rpc=Cap(type=cap)) for cap in CAPABILITIES]
        )

    async def NodeGetInfo(
        self, request: csi_pb2.NodeGetInfoRequest, context: Context
    ) -> csi_pb2.NodeGetInfoResponse:
        """Slots left for our volumes: the instance's slots minus the disks that are not ours.

        At least one disk is always taken (the boot disk, even where this node cannot see it
        as such), and the answer is never below 1: 0 would mean "no limit" to the CO.
        """
        unmanaged = await _in_thread(self._finder.unmanaged_disk_count, self._is_managed)
        free = max(1, self._max_disks - max(1, unmanaged))
        return csi_pb2.NodeGetInfoResponse(
            node_id=self._node_id,
            max_volumes_per_node=free,
            accessible_topology=node_topology(self._attachable),
        )


def _optional_serial(request: csi_pb2.NodePublishVolumeRequest) -> str | None:
    """The serial for the publish-time check of a mount volume, when the CO sent one."""
    if not (request.publish_context.get(CTX_SERIAL) or request.volume_context.get(CTX_SERIAL)):
        return None
    return expected_serial(request.publish_context, request.volume_context)


def _stats_response(stats: VolumeStats) -> csi_pb2.NodeGetVolumeStatsResponse:
    usage = []
    if stats.total_bytes is not None:
        usage.append(
            Usage(
                unit=Usage.BYTES,
                total=stats.total_bytes,
                available=stats.available_bytes or 0,
                used=stats.used_bytes or 0,
            )
        )
    if stats.total_inodes is not None:
        usage.append(
            Usage(
                unit=Usage.INODES,
                total=stats.total_inodes,
                available=stats.free_inodes or 0,
                used=stats.used_inodes or 0,
            )
        )
    return csi_pb2.NodeGetVolumeStatsResponse(
        usage=usage,
        volume_condition=csi_pb2.VolumeCondition(abnormal=stats.abnormal, message=stats.message),
    )
