"""Deferred detach with the Kubernetes backend: the ledger lives in ConfigMaps, so a replacement
controller (empty state directory, another node) takes it over. Real processes: ``serve --mode
controller`` against the simulated Oxide and the test API server.

Controller "old" releases one volume and owes the deletion of another, with no stop; it goes
away. Controller "new" publishes the first back to its instance without a stop (it read the
ledger), knows the second does not exist any more, and deletes its disk after the instance's
next cycle.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from kube_sim import KubeSim
from oxide_csi.csi_v1 import csi_pb2
from oxide_sim import SimulatorServer
from tests.kube.harness import (
    NAMESPACE,
    Controller,
    add_node,
    create_volume,
    publish_request,
    sim_disk,
    sim_instance,
)
from tests.plugin_process import wait_until


def _unpublish(stub: object, volume_id: str, node_id: str) -> None:
    req = csi_pb2.ControllerUnpublishVolumeRequest(volume_id=volume_id, node_id=node_id)
    stub.ControllerUnpublishVolume(req, timeout=30)  # type: ignore[attr-defined]


def _released_entries(kube: KubeSim) -> list[str]:
    import json

    found = kube.list(
        "v1", "ConfigMap", NAMESPACE, label_selector="csi.oxide.computer/state=released-disks"
    )
    return [d["disk_id"] for cm in found for d in json.loads(cm["data"]["ledger.json"])["disks"]]


def test_a_replacement_controller_takes_the_ledger_over(
    sim: SimulatorServer, kube: KubeSim, plugin_factory, plugin_env, short_tmp: Path
) -> None:
    instance_id = add_node(kube, sim)
    old = Controller(sim, kube, plugin_factory, plugin_env, short_tmp, "old")
    proc, stub = old.start()
    kept, deleted, trigger = (create_volume(stub, f"pvc-ledger-{i}") for i in range(3))
    for volume_id in (kept, deleted):
        stub.ControllerPublishVolume(publish_request(volume_id, instance_id), timeout=30)
    stops = sim_instance(sim)["stops"]
    for volume_id in (kept, deleted):
        _unpublish(stub, volume_id, instance_id)
    stub.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=deleted), timeout=30)
    assert sim_instance(sim)["stops"] == stops  # nothing was powered off
    assert sorted(_released_entries(kube)) == sorted([kept, deleted])
    proc.kill()
    proc.wait()

    new = Controller(sim, kube, plugin_factory, plugin_env, short_tmp, "new")
    proc, stub = new.start()
    stub.ControllerPublishVolume(publish_request(kept, instance_id), timeout=30)
    assert sim_instance(sim)["stops"] == stops  # published back: no cycle
    with pytest.raises(grpc.RpcError) as gone:
        stub.ControllerGetVolume(csi_pb2.ControllerGetVolumeRequest(volume_id=deleted), timeout=30)
    assert gone.value.code() == grpc.StatusCode.NOT_FOUND

    stub.ControllerPublishVolume(publish_request(trigger, instance_id), timeout=30)
    assert sim_instance(sim)["stops"] == stops + 1
    wait_until(lambda: sim_disk(sim, deleted).get("error_code") == "ObjectNotFound", "the deletion")
    assert _released_entries(kube) == []
    assert sim_disk(sim, kept)["state"]["state"] == "attached"
    proc.terminate()
    assert proc.wait() == 0
