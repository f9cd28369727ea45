"""Issue 17's storage features at the controller, over gRPC against the simulator.

GetCapacity against ``/v1/utilization``, GetSnapshot, volumes from images, read-only and local
volumes, and existing disks as static volumes (never deleted, serial clashes refused before any
stop). The node's side (never formatting, mounting read-only) is in tests/dev.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from oxide_csi.csi_v1 import csi_pb2
from oxide_csi.volume_contract import CTX_READ_ONLY, CTX_SERIAL, CTX_SOURCE
from tests.controller.conftest import GIB, TOKEN, Rig
from tests.rpc import code_of, error_of

AUTH = {"authorization": f"Bearer {TOKEN}"}
P = {"project": "default"}


def api(rig: Rig, method: str, path: str, **kwargs: Any) -> Any:
    """A raw call of the simulated Oxide API (what an operator or the console would do)."""
    response = rig.hooks.request(method, path, headers=AUTH, **kwargs)
    assert response.status_code < 300, response.text
    return response.json() if response.content else None


def image_from(rig: Rig, volume_id: str, name: str) -> dict[str, Any]:
    snap = api(rig, "POST", "/v1/snapshots", params=P, json={
        "name": f"{name}-src", "description": "", "disk": volume_id,
    })  # fmt: skip
    body = {"name": name, "description": "", "os": "linux", "version": "1",
            "source": {"type": "snapshot", "id": snap["id"]}}  # fmt: skip
    made: dict[str, Any] = api(rig, "POST", "/v1/images", params=P, json=body)
    return made


def raw_disk(rig: Rig, name: str) -> dict[str, Any]:
    body = {"name": name, "description": "made by hand", "size": GIB,
            "disk_backend": {"type": "distributed",
                             "disk_source": {"type": "blank", "block_size": 4096}}}  # fmt: skip
    made: dict[str, Any] = api(rig, "POST", "/v1/disks", params=P, json=body)
    return made


async def capacity(rig: Rig) -> csi_pb2.GetCapacityResponse:
    reply: csi_pb2.GetCapacityResponse = await rig.stub.GetCapacity(csi_pb2.GetCapacityRequest())
    return reply


async def test_get_capacity_is_the_silos_free_storage(rig: Rig) -> None:
    """Done-when: capacity minus provisioned as /v1/utilization says; a CreateVolume of N
    bytes takes N off it."""
    use = api(rig, "GET", "/v1/utilization")
    before = await capacity(rig)
    assert before.available_capacity == use["capacity"]["storage"] - use["provisioned"]["storage"]
    assert before.minimum_volume_size.value == GIB
    assert before.maximum_volume_size.value == 1023 * GIB
    volume = (await rig.create("pvc-cap", 3 * GIB)).volume
    after = await capacity(rig)
    assert before.available_capacity - after.available_capacity == volume.capacity_bytes == 3 * GIB
    bad = rig.stub.GetCapacity(csi_pb2.GetCapacityRequest(parameters={"colour": "red"}))
    assert await code_of(bad) == grpc.StatusCode.INVALID_ARGUMENT


async def test_get_snapshot(rig: Rig) -> None:
    volume = (await rig.create("pvc-getsnap")).volume
    made = await rig.stub.CreateSnapshot(
        csi_pb2.CreateSnapshotRequest(source_volume_id=volume.volume_id, name="snap-get")
    )
    got = await rig.stub.GetSnapshot(
        csi_pb2.GetSnapshotRequest(snapshot_id=made.snapshot.snapshot_id)
    )
    assert got.snapshot.snapshot_id == made.snapshot.snapshot_id
    assert got.snapshot.source_volume_id == volume.volume_id
    assert got.snapshot.size_bytes == GIB and got.snapshot.ready_to_use
    unknown = rig.stub.GetSnapshot(
        csi_pb2.GetSnapshotRequest(snapshot_id="6f1c3a4e-0000-4000-8000-000000000000")
    )
    assert await code_of(unknown) == grpc.StatusCode.NOT_FOUND
    assert await code_of(rig.stub.GetSnapshot(csi_pb2.GetSnapshotRequest())) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )


async def test_volume_from_an_image(rig: Rig) -> None:
    source = (await rig.create("pvc-imgsrc", 2 * GIB)).volume
    image = image_from(rig, source.volume_id, "golden")
    made = {}
    for given in ("golden", image["id"]):
        volume = (await rig.create(f"pvc-img-{given[:6]}", GIB, parameters={"image": given})).volume
        assert volume.capacity_bytes == 2 * GIB  # at least the image's size
        assert volume.volume_context[CTX_SOURCE] == "image"  # so the node never formats it
        disk = await rig.client.get_disk(volume.volume_id)
        assert disk.image_id == image["id"]
        made[given] = volume.volume_id
    again = await rig.create("pvc-img-golden", GIB, parameters={"image": "golden"})
    assert again.volume.volume_id == made["golden"]  # idempotent
    other = rig.create("pvc-img-golden", GIB, parameters={"image": image["id"]})
    assert await code_of(other) == grpc.StatusCode.ALREADY_EXISTS
    missing = rig.create("pvc-img-none", parameters={"image": "no-such-image"})
    assert await code_of(missing) == grpc.StatusCode.NOT_FOUND
    snapshot = csi_pb2.VolumeContentSource(
        snapshot=csi_pb2.VolumeContentSource.SnapshotSource(snapshot_id=image["id"])
    )
    both = rig.create("pvc-img-two", parameters={"image": "golden"}, volume_content_source=snapshot)
    assert await code_of(both) == grpc.StatusCode.INVALID_ARGUMENT


async def test_read_only_volumes(rig: Rig) -> None:
    source = (await rig.create("pvc-rosrc")).volume
    image_from(rig, source.volume_id, "ro-image")
    ro = (await rig.create("pvc-ro", parameters={"image": "ro-image", "readOnly": "true"})).volume
    assert ro.volume_context[CTX_READ_ONLY] == "true"
    assert (await rig.client.get_disk(ro.volume_id)).read_only
    blank = rig.create("pvc-ro-blank", parameters={"readOnly": "true"})
    assert "snapshot or an image" in str((await error_of(blank)).details())
    wrong = rig.create("pvc-ro-big", 5 * GIB, parameters={"image": "ro-image", "readOnly": "yes"})
    assert await code_of(wrong) == grpc.StatusCode.INVALID_ARGUMENT
    too_big = rig.create(
        "pvc-ro-big", 5 * GIB, parameters={"image": "ro-image", "readOnly": "true"}
    )
    assert await code_of(too_big) == grpc.StatusCode.OUT_OF_RANGE  # read-only: the image's size
    node = (await rig.client.get_instance("instance-0")).id
    published = await rig.publish(ro.volume_id, node, readonly=True)  # it is read-only anyway
    assert published.publish_context[CTX_READ_ONLY] == "true"
    writable = (await rig.create("pvc-rw")).volume
    assert await code_of(rig.publish(writable.volume_id, node, readonly=True)) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )


async def test_local_volumes(rig: Rig) -> None:
    local = (await rig.create("pvc-local", 2 * GIB, parameters={"diskType": "local"})).volume
    disk = await rig.client.get_disk(local.volume_id)
    assert disk.disk_type == "local" and disk.block_size == 4096
    snap = rig.stub.CreateSnapshot(
        csi_pb2.CreateSnapshotRequest(source_volume_id=local.volume_id, name="snap-local")
    )
    failed = await error_of(snap)
    assert failed.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "cannot snapshot local disks" in str(failed.details())
    clone_source = csi_pb2.VolumeContentSource(
        volume=csi_pb2.VolumeContentSource.VolumeSource(volume_id=local.volume_id)
    )
    clone = await error_of(rig.create("pvc-local-clone", volume_content_source=clone_source))
    assert clone.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "local disk" in str(clone.details())
    for params in ({"diskType": "local", "readOnly": "true"}, {"diskType": "ssd"}):
        assert await code_of(rig.create("pvc-local-bad", parameters=params)) == (
            grpc.StatusCode.INVALID_ARGUMENT
        )


@pytest.mark.parametrize("sim_config", [{"release": 17}], indirect=True)
async def test_an_older_rack_refuses_local_and_read_only(rig: Rig) -> None:
    source = (await rig.create("pvc-v17")).volume
    image_from(rig, source.volume_id, "old-image")
    made = (await rig.create("pvc-v17-img", parameters={"image": "old-image"})).volume
    assert (await rig.client.get_disk(made.volume_id)).image_id is not None
    for params in ({"diskType": "local"}, {"image": "old-image", "readOnly": "true"}):
        refused = await error_of(rig.create("pvc-v17-new", parameters=params))
        assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "release v18" in str(refused.details())


async def test_existing_disks_as_static_volumes(rig: Rig) -> None:
    disk = raw_disk(rig, "team-data")
    node = (await rig.client.get_instance("instance-0")).id
    published = await rig.publish(disk["id"], node)
    assert published.publish_context[CTX_SERIAL] == "team-data"
    attached = await rig.client.get_disk(disk["id"])
    assert attached.state == "attached" and attached.instance_id == node
    refused = await error_of(
        rig.stub.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=disk["id"]))
    )
    assert refused.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "not created by this plugin" in str(refused.details())
    await rig.unpublish(disk["id"], node)
    again = await error_of(rig.stub.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=disk["id"])))
    assert again.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert (await rig.client.get_disk(disk["id"])).state == "detached"  # never deleted
    listed = await rig.stub.ListVolumes(csi_pb2.ListVolumesRequest())
    assert disk["id"] not in {e.volume.volume_id for e in listed.entries}
    boot = (await rig.client.get_instance("instance-0")).boot_disk_id
    assert boot is not None
    as_volume = await error_of(rig.publish(boot, node))  # a node's own root: never a volume
    assert as_volume.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "boot disk" in str(as_volume.details())


async def test_disks_sharing_a_serial_are_refused_before_any_stop(rig: Rig) -> None:
    first = raw_disk(rig, "shared-prefix-twenty-one")
    second = raw_disk(rig, "shared-prefix-twenty-two")  # same first 20 bytes
    node = (await rig.client.get_instance("instance-1")).id
    await rig.publish(first["id"], node)
    stops = rig.instance("instance-1")["stops"]
    clash = await error_of(rig.publish(second["id"], node))
    assert clash.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "same NVMe serial" in str(clash.details())
    assert rig.instance("instance-1")["stops"] == stops
    other = (await rig.client.get_instance("instance-2")).id
    await rig.publish(second["id"], other)  # alone on another instance it is fine
