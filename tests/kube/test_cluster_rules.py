"""Done when: a publish to an instance that is not an attachable Node of the cluster is refused
without a stop, with a Warning Event on its PVC; the test API server's Event list shows each
cycle on its Node and each attach on its PVC. Also: a full instance's refusal is a Warning on
the PVC too, and the PVC reaches the disk through the provisioner's extra create metadata.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import pytest

from kube_sim import KubeSim
from oxide_csi.csi_v1 import csi_pb2
from oxide_sim import SimulatorServer
from tests.kube.harness import (
    Controller,
    add_node,
    create_volume,
    publish_request,
    sim_instance,
)
from tests.plugin_process import wait_until

APPS = "apps"


def events_about(kube: KubeSim, kind: str, name: str) -> list[dict[str, Any]]:
    return [
        e
        for e in kube.events()
        if e["involvedObject"]["kind"] == kind and e["involvedObject"]["name"] == name
    ]


def reasons(kube: KubeSim, kind: str, name: str) -> list[tuple[str, str]]:
    return [(e["type"], e["reason"]) for e in events_about(kube, kind, name)]


def test_refusals_and_cycles_are_events(
    sim: SimulatorServer, kube: KubeSim, plugin_factory, plugin_env, short_tmp: Path
) -> None:
    kube.add_namespace(APPS)
    for name in ("data-0", "data-1", "data-2"):
        kube.add_pvc(name, APPS)
    node_0 = add_node(kube, sim, "instance-0")
    ctl = Controller(sim, kube, plugin_factory, plugin_env, short_tmp)
    ctl.args += ["--max-disks-per-instance", "2"]  # the boot disk and one more
    proc, stub = ctl.start()
    vols = [create_volume(stub, f"pvc-ev-{i}", (APPS, f"data-{i}")) for i in range(3)]

    stub.ControllerPublishVolume(publish_request(vols[0], node_0), timeout=30)
    not_a_node = str(sim_instance(sim, "instance-1")["id"])  # in the project, not in the cluster
    with pytest.raises(grpc.RpcError) as outside:
        stub.ControllerPublishVolume(publish_request(vols[1], not_a_node), timeout=30)
    assert outside.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "not a node of this Kubernetes cluster" in (outside.value.details() or "")
    node_1 = add_node(kube, sim, "instance-1", **{"csi.oxide.computer/attachable": "false"})
    with pytest.raises(grpc.RpcError) as not_attachable:
        stub.ControllerPublishVolume(publish_request(vols[1], node_1), timeout=30)
    assert not_attachable.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "attachable" in (not_attachable.value.details() or "")
    with pytest.raises(grpc.RpcError) as full:
        stub.ControllerPublishVolume(publish_request(vols[2], node_0), timeout=30)
    assert full.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    nowhere = "8d3e6a52-4f0b-4c8e-9a59-0b2f1d7c6e11"  # no such instance at all: NOT_FOUND
    with pytest.raises(grpc.RpcError) as missing:
        stub.ControllerPublishVolume(publish_request(vols[1], nowhere), timeout=30)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    # Unpublishing from an instance that does not exist is done: nothing is attached there,
    # and the instance the disk is attached to is not touched.
    stub.ControllerUnpublishVolume(
        csi_pb2.ControllerUnpublishVolumeRequest(volume_id=vols[0], node_id=nowhere), timeout=30
    )

    assert sim_instance(sim, "instance-1")["stops"] == 0
    assert sim_instance(sim, "instance-0")["stops"] == 1

    def told() -> bool:
        return (
            ("Normal", "StartedInstance") in reasons(kube, "Node", "node-instance-0")
            and ("Normal", "Attached") in reasons(kube, "PersistentVolumeClaim", "data-0")
            and ("Warning", "AttachRefused") in reasons(kube, "PersistentVolumeClaim", "data-1")
            and ("Warning", "AttachRefused") in reasons(kube, "PersistentVolumeClaim", "data-2")
        )

    wait_until(told, "the events")
    node_events = events_about(kube, "Node", "node-instance-0")
    stopping = next(e for e in node_events if e["reason"] == "StoppingInstance")
    assert "attach PVC apps/data-0" in stopping["message"]
    started = next(e for e in node_events if e["reason"] == "StartedInstance")
    assert "powered off" in started["message"]
    assert ("Normal", "StoppingInstance") in reasons(kube, "PersistentVolumeClaim", "data-0")
    assert events_about(kube, "Node", "node-instance-1") == []  # never cycled
    for event in events_about(kube, "PersistentVolumeClaim", "data-1"):
        assert event["metadata"]["namespace"] == APPS
    refused = [e["message"] for e in events_about(kube, "PersistentVolumeClaim", "data-1")]
    assert any("not a node of this Kubernetes cluster" in m for m in refused)
    assert any("is not labelled csi.oxide.computer/attachable=true" in m for m in refused)
    assert "free disk slot" in events_about(kube, "PersistentVolumeClaim", "data-2")[0]["message"]
    proc.terminate()
    assert proc.wait() == 0
