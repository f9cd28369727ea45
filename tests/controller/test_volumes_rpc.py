"""CreateVolume, DeleteVolume, ValidateVolumeCapabilities, ListVolumes, ControllerGetVolume and
ControllerGetCapabilities over gRPC against the simulator."""

from __future__ import annotations

import asyncio
import uuid

import grpc

from oxide_csi.csi_v1 import csi_pb2
from oxide_csi.volume_contract import CTX_SERIAL, CTX_SOURCE
from tests.controller.conftest import GIB, Mode, Rig, block_cap, mount_cap
from tests.rpc import code_of

Cap = csi_pb2.ControllerServiceCapability.RPC


async def test_create_rounds_up_and_tells_the_node_the_serial(rig: Rig) -> None:
    resp = await rig.create("pvc-0001", size=GIB + GIB // 2)
    vol = resp.volume
    assert uuid.UUID(vol.volume_id)
    assert vol.capacity_bytes == 2 * GIB
    disk = await rig.client.get_disk(vol.volume_id)
    assert disk.state == "detached"  # returned only once usable
    assert disk.name == "csi-a0c428246c73d035-pvc-0001"  # csi- + sha256(name)[:16] + name
    assert vol.volume_context[CTX_SERIAL] == disk.name[:20]
    assert vol.volume_context[CTX_SOURCE] == "blank"
    assert not vol.HasField("content_source")


async def test_zero_capacity_means_one_gib(rig: Rig) -> None:
    resp = await rig.create("pvc-small", size=0)
    assert resp.volume.capacity_bytes == GIB


async def test_create_is_idempotent_and_refuses_incompatible_repeats(rig: Rig) -> None:
    first = await rig.create("pvc-same", size=GIB)
    again = await rig.create("pvc-same", size=GIB)
    assert again.volume.volume_id == first.volume.volume_id
    assert await code_of(rig.create("pvc-same", size=5 * GIB)) == grpc.StatusCode.ALREADY_EXISTS
    other_fs = [mount_cap(fs_type="xfs")]
    code = await code_of(rig.create("pvc-same", volume_capabilities=other_fs))
    assert code == grpc.StatusCode.ALREADY_EXISTS


async def test_concurrent_duplicates_create_one_disk(rig: Rig) -> None:
    results = await asyncio.gather(*(rig.create("pvc-race") for _ in range(8)))
    assert len({r.volume.volume_id for r in results}) == 1
    disks = [d async for d in rig.client.list_disks() if d.name.startswith("csi-")]
    assert len(disks) == 1
    assert rig.stats()["requests"].get("POST /v1/disks") == 1


async def test_capacity_limits_are_out_of_range(rig: Rig) -> None:
    too_big = rig.create("pvc-huge", size=1024 * GIB)
    assert await code_of(too_big) == grpc.StatusCode.OUT_OF_RANGE
    tiny = csi_pb2.CreateVolumeRequest(
        name="pvc-tiny",
        capacity_range=csi_pb2.CapacityRange(required_bytes=1, limit_bytes=GIB // 2),
        volume_capabilities=[mount_cap()],
    )
    assert await code_of(rig.stub.CreateVolume(tiny)) == grpc.StatusCode.OUT_OF_RANGE
    backwards = csi_pb2.CreateVolumeRequest(
        name="pvc-backwards",
        capacity_range=csi_pb2.CapacityRange(required_bytes=3 * GIB, limit_bytes=2 * GIB),
        volume_capabilities=[mount_cap()],
    )
    assert await code_of(rig.stub.CreateVolume(backwards)) == grpc.StatusCode.INVALID_ARGUMENT


async def test_parameters_are_validated(rig: Rig) -> None:
    bad = rig.create("pvc-p1", parameters={"type": "fast"})
    assert await code_of(bad) == grpc.StatusCode.INVALID_ARGUMENT
    bad_block = rig.create("pvc-p2", parameters={"blockSize": "1024"})
    assert await code_of(bad_block) == grpc.StatusCode.INVALID_ARGUMENT
    bad_fs = rig.create("pvc-p3", parameters={"fsType": "btrfs"})
    assert await code_of(bad_fs) == grpc.StatusCode.INVALID_ARGUMENT
    clash = rig.create(
        "pvc-p4", parameters={"fsType": "ext4"}, volume_capabilities=[mount_cap(fs_type="xfs")]
    )
    assert await code_of(clash) == grpc.StatusCode.INVALID_ARGUMENT
    ok = await rig.create(
        "pvc-p5",
        parameters={
            "blockSize": "512",
            "fsType": "xfs",
            "csi.storage.k8s.io/pvc/name": "data",
            "csi.storage.k8s.io/pvc/namespace": "default",
        },
    )
    disk = await rig.client.get_disk(ok.volume.volume_id)
    assert disk.block_size == 512
    assert ok.volume.volume_context["oxide.computer/fs-type"] == "xfs"
    # The claim is kept with the disk, for Events about it later.
    assert '"pvc":"default/data"' in disk.description.replace(" ", "")


async def test_requests_oxide_cannot_honour_are_invalid(rig: Rig) -> None:
    assert await code_of(rig.create("")) == grpc.StatusCode.INVALID_ARGUMENT
    none = rig.create("pvc-nocaps", volume_capabilities=[])
    assert await code_of(none) == grpc.StatusCode.INVALID_ARGUMENT
    unknown_mode = rig.create("pvc-mode-x", volume_capabilities=[mount_cap(99)])  # type: ignore[arg-type]
    assert await code_of(unknown_mode) == grpc.StatusCode.INVALID_ARGUMENT  # open enum: no crash
    for mode in (Mode.MULTI_NODE_MULTI_WRITER, Mode.MULTI_NODE_READER_ONLY):
        multi = rig.create(f"pvc-mode-{mode}", volume_capabilities=[mount_cap(mode)])
        assert await code_of(multi) == grpc.StatusCode.INVALID_ARGUMENT
    assert (await rig.create("pvc-block", volume_capabilities=[block_cap()])).volume.volume_id


async def test_delete_is_idempotent(rig: Rig) -> None:
    vol = (await rig.create("pvc-del")).volume
    req = csi_pb2.DeleteVolumeRequest(volume_id=vol.volume_id)
    await rig.stub.DeleteVolume(req)
    await rig.stub.DeleteVolume(req)
    assert [d async for d in rig.client.list_disks() if d.id == vol.volume_id] == []
    for unknown in (str(uuid.uuid4()), "not-a-volume-id"):
        await rig.stub.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=unknown))
    missing = rig.stub.DeleteVolume(csi_pb2.DeleteVolumeRequest())
    assert await code_of(missing) == grpc.StatusCode.INVALID_ARGUMENT


async def test_delete_refuses_attached_and_foreign_disks(rig: Rig) -> None:
    vol = (await rig.create("pvc-busy")).volume
    instance = await rig.client.get_instance("instance-0")
    await rig.publish(vol.volume_id, instance.id)
    req = csi_pb2.DeleteVolumeRequest(volume_id=vol.volume_id)
    assert await code_of(rig.stub.DeleteVolume(req)) == grpc.StatusCode.FAILED_PRECONDITION
    assert instance.boot_disk_id
    boot = csi_pb2.DeleteVolumeRequest(volume_id=instance.boot_disk_id)
    assert await code_of(rig.stub.DeleteVolume(boot)) == grpc.StatusCode.FAILED_PRECONDITION
    assert (await rig.client.get_disk(instance.boot_disk_id)).state == "attached"


async def test_validate_volume_capabilities(rig: Rig) -> None:
    vol = (await rig.create("pvc-validate")).volume
    ok = await rig.stub.ValidateVolumeCapabilities(
        csi_pb2.ValidateVolumeCapabilitiesRequest(
            volume_id=vol.volume_id, volume_capabilities=[mount_cap(), block_cap()]
        )
    )
    assert ok.HasField("confirmed") and len(ok.confirmed.volume_capabilities) == 2
    no = await rig.stub.ValidateVolumeCapabilities(
        csi_pb2.ValidateVolumeCapabilitiesRequest(
            volume_id=vol.volume_id,
            volume_capabilities=[mount_cap(Mode.MULTI_NODE_MULTI_WRITER)],
        )
    )
    assert not no.HasField("confirmed") and "MULTI_NODE_MULTI_WRITER" in no.message
    xfs = (await rig.create("pvc-validate-xfs", parameters={"fsType": "xfs"})).volume
    other_fs = await rig.stub.ValidateVolumeCapabilities(
        csi_pb2.ValidateVolumeCapabilitiesRequest(
            volume_id=xfs.volume_id, volume_capabilities=[mount_cap(fs_type="ext4")]
        )
    )
    assert not other_fs.HasField("confirmed") and "xfs" in other_fs.message
    unknown = csi_pb2.ValidateVolumeCapabilitiesRequest(
        volume_id=str(uuid.uuid4()), volume_capabilities=[mount_cap()]
    )
    code = await code_of(rig.stub.ValidateVolumeCapabilities(unknown))
    assert code == grpc.StatusCode.NOT_FOUND
    empty = csi_pb2.ValidateVolumeCapabilitiesRequest(volume_id=vol.volume_id)
    code = await code_of(rig.stub.ValidateVolumeCapabilities(empty))
    assert code == grpc.StatusCode.INVALID_ARGUMENT


async def test_list_volumes_pages_and_reports_publication(rig: Rig) -> None:
    made = [(await rig.create(f"pvc-list-{i}")).volume.volume_id for i in range(5)]
    instance = await rig.client.get_instance("instance-1")
    await rig.publish(made[0], instance.id)
    seen: list[csi_pb2.ListVolumesResponse.Entry] = []
    token = ""
    while True:
        resp = await rig.stub.ListVolumes(
            csi_pb2.ListVolumesRequest(max_entries=2, starting_token=token)
        )
        assert len(resp.entries) <= 2
        seen.extend(resp.entries)
        token = resp.next_token
        if not token:
            break
    assert sorted(e.volume.volume_id for e in seen) == sorted(made)  # no boot disks, no repeats
    published = {e.volume.volume_id: list(e.status.published_node_ids) for e in seen}
    assert published[made[0]] == [instance.id, instance.name]  # either node id spelling
    assert published[made[1]] == []
    bad = rig.stub.ListVolumes(csi_pb2.ListVolumesRequest(starting_token="invalid-token"))
    assert await code_of(bad) == grpc.StatusCode.ABORTED
    negative = rig.stub.ListVolumes(csi_pb2.ListVolumesRequest(max_entries=-1))
    assert await code_of(negative) == grpc.StatusCode.INVALID_ARGUMENT


async def test_get_volume_reports_condition(rig: Rig) -> None:
    vol = (await rig.create("pvc-get")).volume
    req = csi_pb2.ControllerGetVolumeRequest(volume_id=vol.volume_id)
    healthy = await rig.stub.ControllerGetVolume(req)
    assert healthy.volume.volume_id == vol.volume_id
    assert healthy.status.volume_condition.abnormal is False
    rig.hooks.post(f"/sim/disks/{vol.volume_id}/fault").raise_for_status()
    faulted = await rig.stub.ControllerGetVolume(req)
    assert faulted.status.volume_condition.abnormal is True
    unknown = csi_pb2.ControllerGetVolumeRequest(volume_id=str(uuid.uuid4()))
    assert await code_of(rig.stub.ControllerGetVolume(unknown)) == grpc.StatusCode.NOT_FOUND


async def test_capabilities_are_exactly_what_works(rig: Rig) -> None:
    resp = await rig.stub.ControllerGetCapabilities(csi_pb2.ControllerGetCapabilitiesRequest())
    caps = {c.rpc.type for c in resp.capabilities}
    assert caps == {
        Cap.CREATE_DELETE_VOLUME,
        Cap.PUBLISH_UNPUBLISH_VOLUME,
        Cap.LIST_VOLUMES,
        Cap.LIST_VOLUMES_PUBLISHED_NODES,
        Cap.GET_VOLUME,
        Cap.VOLUME_CONDITION,
        Cap.CREATE_DELETE_SNAPSHOT,
        Cap.LIST_SNAPSHOTS,
        Cap.GET_SNAPSHOT,
        Cap.GET_CAPACITY,
        Cap.CLONE_VOLUME,
        Cap.SINGLE_NODE_MULTI_WRITER,
    }
    assert Cap.EXPAND_VOLUME not in caps


#: Each capability that names an RPC, and the RPC: advertised exactly when it is implemented.
RPC_OF_CAPABILITY = {
    Cap.CREATE_DELETE_VOLUME: ("DeleteVolume", csi_pb2.DeleteVolumeRequest),
    Cap.PUBLISH_UNPUBLISH_VOLUME: (
        "ControllerUnpublishVolume",
        csi_pb2.ControllerUnpublishVolumeRequest,
    ),
    Cap.LIST_VOLUMES: ("ListVolumes", csi_pb2.ListVolumesRequest),
    Cap.GET_CAPACITY: ("GetCapacity", csi_pb2.GetCapacityRequest),
    Cap.CREATE_DELETE_SNAPSHOT: ("DeleteSnapshot", csi_pb2.DeleteSnapshotRequest),
    Cap.LIST_SNAPSHOTS: ("ListSnapshots", csi_pb2.ListSnapshotsRequest),
    Cap.EXPAND_VOLUME: ("ControllerExpandVolume", csi_pb2.ControllerExpandVolumeRequest),
    Cap.GET_VOLUME: ("ControllerGetVolume", csi_pb2.ControllerGetVolumeRequest),
    Cap.MODIFY_VOLUME: ("ControllerModifyVolume", csi_pb2.ControllerModifyVolumeRequest),
    Cap.GET_SNAPSHOT: ("GetSnapshot", csi_pb2.GetSnapshotRequest),
}


async def test_advertised_rpcs_are_exactly_the_implemented_ones(rig: Rig) -> None:
    """Checked against behaviour, not a copy of the list: an RPC behind a capability answers
    something other than UNIMPLEMENTED exactly when the capability is advertised."""
    resp = await rig.stub.ControllerGetCapabilities(csi_pb2.ControllerGetCapabilitiesRequest())
    advertised = {c.rpc.type for c in resp.capabilities}
    for cap, (method, request) in RPC_OF_CAPABILITY.items():
        try:
            await getattr(rig.stub, method)(request())
            code = grpc.StatusCode.OK
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
        implemented = code != grpc.StatusCode.UNIMPLEMENTED
        assert implemented == (cap in advertised), (Cap.Type.Name(cap), code)


async def test_what_oxide_cannot_do_is_unimplemented(rig: Rig) -> None:
    calls = [
        rig.stub.ControllerExpandVolume(
            csi_pb2.ControllerExpandVolumeRequest(volume_id="v", capacity_range=None)
        ),
        rig.stub.ControllerModifyVolume(csi_pb2.ControllerModifyVolumeRequest(volume_id="v")),
    ]
    for call in calls:
        assert await code_of(call) == grpc.StatusCode.UNIMPLEMENTED
