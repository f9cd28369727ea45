"""ControllerPublishVolume and ControllerUnpublishVolume over gRPC: the coordinator's rules as the
CO sees them, counted on the simulator's stop/start counters."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest

from oxide_csi.csi_v1 import csi_pb2
from oxide_csi.volume_contract import CTX_SERIAL
from tests.controller.attach.conftest import until
from tests.controller.conftest import Mode, Rig, mount_cap
from tests.controller.held_stops import hold_stops
from tests.rpc import code_of


async def test_seven_concurrent_publishes_cost_one_power_cycle(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    instance = await rig.client.get_instance("instance-0")
    before = rig.instance("instance-0")
    vols = [(await rig.create(f"pvc-burst-{i}")).volume for i in range(8)]
    release = hold_stops(rig.client, monkeypatch)

    calls = [asyncio.create_task(rig.publish(v.volume_id, instance.id)) for v in vols[:7]]
    await until(lambda: rig.coordinator.in_flight() == 7, "seven queued attaches")
    release.set()
    results = await asyncio.gather(*calls)

    after = rig.instance("instance-0")
    assert after["stops"] == before["stops"] + 1
    assert after["starts"] == before["starts"] + 1
    assert after["state"] == "running"
    for vol, resp in zip(vols[:7], results, strict=True):
        assert resp.publish_context[CTX_SERIAL] == vol.volume_context[CTX_SERIAL]
        disk = await rig.client.get_disk(vol.volume_id)
        assert disk.state == "attached" and disk.instance_id == instance.id

    # boot disk + 7 = 8 slots: the eighth volume does not fit, and nothing is stopped for it
    full = rig.publish(vols[7].volume_id, instance.id)
    assert await code_of(full) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert rig.instance("instance-0")["stops"] == after["stops"]


async def test_publish_is_idempotent_and_exclusive(rig: Rig) -> None:
    a = await rig.client.get_instance("instance-0")
    b = await rig.client.get_instance("instance-1")
    vol = (await rig.create("pvc-pub")).volume
    first = await rig.publish(vol.volume_id, a.id)
    stops = rig.instance("instance-0")["stops"]
    again = await rig.publish(vol.volume_id, a.name)  # the instance's name works as node id too
    assert again.publish_context == first.publish_context
    assert rig.instance("instance-0")["stops"] == stops  # already attached: no power cycle
    elsewhere = rig.publish(vol.volume_id, b.id)
    assert await code_of(elsewhere) == grpc.StatusCode.FAILED_PRECONDITION
    assert rig.instance("instance-1")["stops"] == 0


async def test_publish_errors(rig: Rig) -> None:
    instance = await rig.client.get_instance("instance-0")
    vol = (await rig.create("pvc-pub-err")).volume
    cases = {
        grpc.StatusCode.NOT_FOUND: [
            rig.publish(str(uuid.uuid4()), instance.id),
            rig.publish("no-such-volume", instance.id),
            rig.publish(vol.volume_id, str(uuid.uuid4())),
            rig.publish(vol.volume_id, "no-such-instance"),
        ],
        grpc.StatusCode.INVALID_ARGUMENT: [
            rig.publish(vol.volume_id, instance.id, readonly=True),
            rig.publish(vol.volume_id, instance.id, volume_capability=None),
            rig.publish(
                vol.volume_id,
                instance.id,
                volume_capability=mount_cap(Mode.MULTI_NODE_MULTI_WRITER),
            ),
            rig.publish("", instance.id),
            rig.publish(vol.volume_id, ""),
        ],
    }
    for code, calls in cases.items():
        for call in calls:
            assert await code_of(call) == code
    assert rig.instance("instance-0")["stops"] == 0


async def test_unpublish(rig: Rig) -> None:
    instance = await rig.client.get_instance("instance-2")
    vol = (await rig.create("pvc-unpub")).volume
    await rig.unpublish(vol.volume_id, instance.id)  # never attached: success, no power cycle
    assert rig.instance("instance-2")["stops"] == 0
    await rig.publish(vol.volume_id, instance.id)
    await rig.unpublish(vol.volume_id, instance.id)
    assert (await rig.client.get_disk(vol.volume_id)).state == "detached"
    await rig.unpublish(vol.volume_id, instance.id)  # again: success
    await rig.unpublish(str(uuid.uuid4()), instance.id)  # unknown volume
    await rig.unpublish(vol.volume_id, str(uuid.uuid4()))  # unknown instance
    assert rig.instance("instance-2")["stops"] == 2  # one cycle to attach, one to detach


async def test_unpublish_without_node_detaches_from_wherever(rig: Rig) -> None:
    instance = await rig.client.get_instance("instance-1")
    vol = (await rig.create("pvc-anywhere")).volume
    await rig.publish(vol.volume_id, instance.id)
    await rig.unpublish(vol.volume_id)
    assert (await rig.client.get_disk(vol.volume_id)).state == "detached"
    missing = rig.stub.ControllerUnpublishVolume(csi_pb2.ControllerUnpublishVolumeRequest())
    assert await code_of(missing) == grpc.StatusCode.INVALID_ARGUMENT
