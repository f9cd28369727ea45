"""The deferred detach policy over gRPC, counted on the simulator's stop counters.

An unpublish releases the disk (no stop); a publish back costs nothing; a publish elsewhere
cycles the old instance first; any cycle of the instance detaches its released disks; a
released disk's DeleteVolume is owed, hidden from CSI, and done after the next cycle.
"""

from __future__ import annotations

import asyncio
import time

import grpc
import pytest

from oxide_csi.controller.attach.released import LedgerView
from oxide_csi.csi_v1 import csi_pb2
from oxide_csi.oxide import api_errors
from tests.controller.conftest import TOKEN, Rig
from tests.rpc import code_of

pytestmark = pytest.mark.parametrize("detach_policy", ["deferred"])


async def _settled(rig: Rig) -> None:
    """Until the ledger is empty: a cycle's ops answer once the instance runs again, and the
    ledger is settled (entries dropped, owed deletions done) right after that."""
    end = time.monotonic() + 10
    while (view := await rig.coordinator.view()) != LedgerView():
        assert time.monotonic() < end, f"the ledger never settled: {view}"
        await asyncio.sleep(0.01)


async def _get(rig: Rig, volume_id: str) -> csi_pb2.ControllerGetVolumeResponse:
    req = csi_pb2.ControllerGetVolumeRequest(volume_id=volume_id)
    response: csi_pb2.ControllerGetVolumeResponse = await rig.stub.ControllerGetVolume(
        req, timeout=30
    )
    return response


async def _listed(rig: Rig) -> dict[str, list[str]]:
    response = await rig.stub.ListVolumes(csi_pb2.ListVolumesRequest(), timeout=30)
    return {e.volume.volume_id: list(e.status.published_node_ids) for e in response.entries}


async def _delete(rig: Rig, volume_id: str) -> None:
    await rig.stub.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=volume_id), timeout=30)


async def test_unpublish_releases_and_a_publish_back_costs_nothing(rig: Rig) -> None:
    inst = await rig.client.get_instance("instance-0")
    vol = (await rig.create("pvc-back")).volume
    await rig.publish(vol.volume_id, inst.id)
    stops = rig.instance("instance-0")["stops"]

    await rig.unpublish(vol.volume_id, inst.id)
    disk = await rig.client.get_disk(vol.volume_id)
    assert (disk.state, disk.instance_id) == ("attached", inst.id)  # still there, idle
    assert rig.instance("instance-0")["stops"] == stops
    # CSI's view: published nowhere, so the external-attacher's reconciliation agrees
    assert list((await _get(rig, vol.volume_id)).status.published_node_ids) == []
    assert (await _listed(rig))[vol.volume_id] == []
    await rig.unpublish(vol.volume_id, inst.id)  # idempotent

    await rig.publish(vol.volume_id, inst.id)
    assert rig.instance("instance-0")["stops"] == stops
    assert inst.id in (await _get(rig, vol.volume_id)).status.published_node_ids
    # no longer released: another cycle of the instance leaves it attached
    other = (await rig.create("pvc-back-other")).volume
    await rig.publish(other.volume_id, inst.id)
    assert rig.instance("instance-0")["stops"] == stops + 1
    assert (await rig.client.get_disk(vol.volume_id)).instance_id == inst.id


async def test_any_cycle_detaches_the_released_disks(rig: Rig) -> None:
    inst = await rig.client.get_instance("instance-0")
    a, b = [(await rig.create(f"pvc-join-{i}")).volume for i in range(2)]
    await rig.publish(a.volume_id, inst.id)
    await rig.unpublish(a.volume_id, inst.id)
    stops = rig.instance("instance-0")["stops"]

    await rig.publish(b.volume_id, inst.id)  # a cycle for b: a leaves in the same one
    assert rig.instance("instance-0")["stops"] == stops + 1
    assert (await rig.client.get_disk(a.volume_id)).state == "detached"
    assert (await rig.client.get_disk(b.volume_id)).instance_id == inst.id
    await _settled(rig)


async def test_publish_elsewhere_cycles_the_old_instance_first(rig: Rig) -> None:
    a = await rig.client.get_instance("instance-0")
    b = await rig.client.get_instance("instance-1")
    vol = (await rig.create("pvc-move")).volume
    await rig.publish(vol.volume_id, a.id)
    await rig.unpublish(vol.volume_id, a.id)
    stops_a, stops_b = rig.instance("instance-0")["stops"], rig.instance("instance-1")["stops"]

    await rig.publish(vol.volume_id, b.id)
    assert rig.instance("instance-0")["stops"] == stops_a + 1  # the detach
    assert rig.instance("instance-1")["stops"] == stops_b + 1  # the attach
    assert (await rig.client.get_disk(vol.volume_id)).instance_id == b.id
    await _settled(rig)


async def test_a_published_disk_is_still_not_published_elsewhere(rig: Rig) -> None:
    a = await rig.client.get_instance("instance-0")
    b = await rig.client.get_instance("instance-1")
    vol = (await rig.create("pvc-busy")).volume
    await rig.publish(vol.volume_id, a.id)
    assert await code_of(rig.publish(vol.volume_id, b.id)) == grpc.StatusCode.FAILED_PRECONDITION
    # and DeleteVolume of a published (not released) disk stays refused
    assert await code_of(_delete(rig, vol.volume_id)) == grpc.StatusCode.FAILED_PRECONDITION


@pytest.mark.parametrize("sim_config", [{"max_disks_per_instance": 3}], indirect=True)
async def test_released_disks_free_their_slots(rig: Rig) -> None:
    inst = await rig.client.get_instance("instance-0")
    a, b, c = [(await rig.create(f"pvc-slot-{i}")).volume for i in range(3)]
    await rig.publish(a.volume_id, inst.id)
    await rig.publish(b.volume_id, inst.id)  # boot + a + b: full
    await rig.unpublish(a.volume_id, inst.id)
    stops = rig.instance("instance-0")["stops"]

    await rig.publish(c.volume_id, inst.id)
    assert rig.instance("instance-0")["stops"] == stops + 1
    assert (await rig.client.get_disk(a.volume_id)).state == "detached"
    assert (await rig.client.get_disk(c.volume_id)).instance_id == inst.id


async def test_delete_of_a_released_volume_is_owed_and_hidden(rig: Rig) -> None:
    inst = await rig.client.get_instance("instance-0")
    vol = (await rig.create("pvc-owed")).volume
    await rig.publish(vol.volume_id, inst.id)
    await rig.unpublish(vol.volume_id, inst.id)
    stops = rig.instance("instance-0")["stops"]

    await _delete(rig, vol.volume_id)
    assert rig.instance("instance-0")["stops"] == stops  # nothing powered off
    assert (await rig.client.get_disk(vol.volume_id)).state == "attached"
    # from now on the volume does not exist for CSI
    assert await code_of(_get(rig, vol.volume_id)) == grpc.StatusCode.NOT_FOUND
    assert vol.volume_id not in await _listed(rig)
    assert await code_of(rig.publish(vol.volume_id, inst.id)) == grpc.StatusCode.NOT_FOUND
    snap = rig.stub.CreateSnapshot(
        csi_pb2.CreateSnapshotRequest(source_volume_id=vol.volume_id, name="snap-owed"),
        timeout=30,
    )
    assert await code_of(snap) == grpc.StatusCode.NOT_FOUND
    await _delete(rig, vol.volume_id)  # again: OK
    await rig.unpublish(vol.volume_id, inst.id)  # OK: gone
    # the name cannot get the old disk back while it waits
    assert await code_of(rig.create("pvc-owed")) == grpc.StatusCode.ABORTED

    other = (await rig.create("pvc-owed-trigger")).volume
    await rig.publish(other.volume_id, inst.id)  # the instance's next cycle
    assert rig.instance("instance-0")["stops"] == stops + 1
    await _settled(rig)
    with pytest.raises(api_errors.OxideNotFound):
        await rig.client.get_disk(vol.volume_id)
    fresh = (await rig.create("pvc-owed")).volume
    assert fresh.volume_id != vol.volume_id


async def test_recovery_reconciles_the_ledger_with_oxide(rig: Rig) -> None:
    inst = await rig.client.get_instance("instance-1")
    kept, moved, owed = [(await rig.create(f"pvc-rec-{i}")).volume for i in range(3)]
    for vol in (kept, moved, owed):
        await rig.publish(vol.volume_id, inst.id)
    for vol in (kept, moved, owed):
        await rig.unpublish(vol.volume_id, inst.id)
    await _delete(rig, owed.volume_id)
    # Out of band (as if a crash hit between a cycle's detach and its ledger write): the
    # instance is stopped and two disks are detached behind the plugin's back.
    await rig.client.stop_instance(inst.id)
    await rig.client.wait_instance(inst.id, {"stopped"})
    await rig.client.detach_disk(inst.id, moved.volume_id)
    await rig.client.detach_disk(inst.id, owed.volume_id)

    await rig.coordinator.recover()
    view = await rig.coordinator.view()
    assert view.released == {kept.volume_id} and not view.owed
    with pytest.raises(api_errors.OxideNotFound):
        await rig.client.get_disk(owed.volume_id)


async def test_a_deleted_instance_takes_its_entries_and_owed_deletions_proceed(rig: Rig) -> None:
    inst = await rig.client.get_instance("instance-2")
    released, owed = [(await rig.create(f"pvc-gone-{i}")).volume for i in range(2)]
    for vol in (released, owed):
        await rig.publish(vol.volume_id, inst.id)
    for vol in (released, owed):
        await rig.unpublish(vol.volume_id, inst.id)
    await _delete(rig, owed.volume_id)
    await rig.client.stop_instance(inst.id)
    await rig.client.wait_instance(inst.id, {"stopped"})
    gone = rig.hooks.delete(
        f"/v1/instances/{inst.id}", headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert gone.status_code == 204

    await rig.coordinator.recover()
    await _settled(rig)
    assert (await rig.client.get_disk(released.volume_id)).state == "detached"
    with pytest.raises(api_errors.OxideNotFound):
        await rig.client.get_disk(owed.volume_id)
