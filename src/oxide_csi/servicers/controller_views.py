"""Domain objects to CSI messages, and what the node learns through volume/publish context.

Kept apart from the servicer so that the translation -- the one place that decides what the
node is told -- can be read on its own.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from google.protobuf.wrappers_pb2 import Int64Value

from oxide_csi.controller.parameters import GIB, MAX_BYTES, MIN_BYTES
from oxide_csi.controller.snapshots import VolumeSnapshot
from oxide_csi.controller.volumes import Volume
from oxide_csi.csi_v1 import csi_pb2
from oxide_csi.oxide.models import Utilization
from oxide_csi.servicers.topology import VOLUME_TOPOLOGY
from oxide_csi.volume_contract import (
    CTX_DISK_NAME,
    CTX_FS_TYPE,
    CTX_READ_ONLY,
    CTX_SERIAL,
    CTX_SOURCE,
)


def volume_context(volume: Volume) -> dict[str, str]:
    """What NodeStage needs: the serial to look for, and whether the disk started blank.

    ``source`` is what allows formatting at all: only a disk created blank may ever be
    formatted; one restored from a snapshot or cloned carries a filesystem already.
    """
    ctx = {
        CTX_DISK_NAME: volume.disk.name,
        CTX_SERIAL: volume.serial,
        CTX_SOURCE: volume.meta.source,
    }
    if volume.meta.fs_type:
        ctx[CTX_FS_TYPE] = volume.meta.fs_type
    if volume.disk.read_only:
        ctx[CTX_READ_ONLY] = "true"
    return ctx


def publish_context(volume: Volume) -> dict[str, str]:
    """What the node needs at stage besides the volume context. A static volume's context is
    whatever its PersistentVolume says, so the facts that decide formatting and read-only
    mounting travel here too, where only this controller writes them (``source`` "static"
    is never formatted)."""
    ctx = {
        CTX_SERIAL: volume.serial,
        CTX_DISK_NAME: volume.disk.name,
        CTX_SOURCE: volume.meta.source,
    }
    if volume.disk.read_only:
        ctx[CTX_READ_ONLY] = "true"
    return ctx


def capacity_message(found: Utilization) -> csi_pb2.GetCapacityResponse:
    """Available bytes, and the largest disk that could still be made (whole GiB, at most
    Oxide's 1023 GiB)."""
    available = found.storage_available
    largest = min(MAX_BYTES, available // GIB * GIB)
    return csi_pb2.GetCapacityResponse(
        available_capacity=available,
        maximum_volume_size=Int64Value(value=largest),
        minimum_volume_size=Int64Value(value=MIN_BYTES),
    )


def content_source(volume: Volume) -> csi_pb2.VolumeContentSource | None:
    if volume.meta.source == "snapshot":
        return csi_pb2.VolumeContentSource(
            snapshot=csi_pb2.VolumeContentSource.SnapshotSource(snapshot_id=volume.meta.source_id)
        )
    if volume.meta.source == "volume":
        return csi_pb2.VolumeContentSource(
            volume=csi_pb2.VolumeContentSource.VolumeSource(volume_id=volume.meta.source_id)
        )
    return None


def volume_message(volume: Volume) -> csi_pb2.Volume:
    fields: dict[str, Any] = {
        "volume_id": volume.disk.id,
        "capacity_bytes": volume.disk.size,
        "volume_context": volume_context(volume),
        "accessible_topology": VOLUME_TOPOLOGY,
    }
    source = content_source(volume)
    if source is not None:
        fields["content_source"] = source
    return csi_pb2.Volume(**fields)


def condition(volume: Volume) -> csi_pb2.VolumeCondition:
    if volume.faulted:
        return csi_pb2.VolumeCondition(
            abnormal=True, message=f"Oxide reports disk {volume.disk.name} as {volume.disk.state}"
        )
    return csi_pb2.VolumeCondition(abnormal=False, message=f"disk is {volume.disk.state}")


def snapshot_message(found: VolumeSnapshot) -> csi_pb2.Snapshot:
    snap = found.snapshot
    created = Timestamp()
    if snap.time_created is not None:
        created.FromDatetime(snap.time_created)
    return csi_pb2.Snapshot(
        size_bytes=snap.size,
        snapshot_id=snap.id,
        source_volume_id=snap.disk_id,
        creation_time=created,
        ready_to_use=found.ready,
    )
