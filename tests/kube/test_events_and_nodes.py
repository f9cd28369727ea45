"""Events never hold up a CSI call (bounded queue, background writer, failures only logged),
and instances are matched to Nodes by providerID or by the CSINode's node id for our driver."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kube_sim import KubeSim
from oxide_csi import errors
from oxide_csi.kube.events import NORMAL, WARNING, EventRecorder, Target
from oxide_csi.kube.nodes import NodeGate, NotANode
from tests.kube.harness import ATTACHABLE, NAMESPACE
from tests.kube.inproc import client_for, controller_settings
from tests.plugin_process import wait_until


async def test_events_wait_for_nobody(kube: KubeSim, tmp_path: Path) -> None:
    settings = controller_settings(kube, tmp_path, "a")
    kube.block("inproc-a")  # the API server answers nothing
    async with client_for(settings, timeout=0.5) as client:
        recorder = EventRecorder(client, settings.identity, size=5)
        recorder.start()
        for i in range(50):  # a synchronous call: it cannot wait for the API server
            recorder.emit(Target.node("worker-1"), NORMAL, "Test", f"event {i}")
        await asyncio.sleep(0)
        assert recorder.dropped >= 50 - 6  # the queue holds 5, the writer 1
        kube.unblock("inproc-a")

        async def lookup() -> Target | None:
            return Target.pvc(NAMESPACE, "data")

        recorder.emit(lookup, WARNING, "Refused", "looked up in the background")
        await recorder.close(grace=10)
    await asyncio.to_thread(
        wait_until, lambda: any(e["reason"] == "Refused" for e in kube.events()), "the event"
    )
    refused = next(e for e in kube.events() if e["reason"] == "Refused")
    assert refused["involvedObject"]["kind"] == "PersistentVolumeClaim"
    assert refused["metadata"]["namespace"] == NAMESPACE
    assert refused["type"] == "Warning"
    node_events = [e for e in kube.events() if e["involvedObject"]["kind"] == "Node"]
    assert all(e["metadata"]["namespace"] == "default" for e in node_events)


async def test_nodes_by_provider_id_or_csinode(kube: KubeSim, tmp_path: Path) -> None:
    kube.add_node("by-provider", provider_id="oxide://1f0e", labels=ATTACHABLE)
    kube.add_node("by-csinode", labels=ATTACHABLE)
    kube.add_csinode("by-csinode", node_id="instance-7")
    kube.add_node("control-plane", labels={"csi.oxide.computer/attachable": "false"})
    kube.add_csinode("control-plane", node_id="instance-8")
    kube.add_node("other-driver", labels=ATTACHABLE)
    kube.add_csinode("other-driver", node_id="instance-9", driver="ebs.csi.aws.com")
    async with client_for(controller_settings(kube, tmp_path, "a")) as client:
        gate = NodeGate(client)
        assert await gate.require_attachable("1f0e") == "by-provider"
        assert await gate.require_attachable("instance-7") == "by-csinode"
        assert await gate.node_name("id-unknown", "instance-7") == "by-csinode"
        with pytest.raises(errors.FailedPrecondition, match="not labelled"):
            await gate.require_attachable("instance-8")
        with pytest.raises(NotANode):
            await gate.require_attachable("instance-9")
        assert await gate.node_name("nothing") is None


async def test_a_repeated_event_counts_up(kube: KubeSim, tmp_path: Path) -> None:
    settings = controller_settings(kube, tmp_path, "a")
    async with client_for(settings) as client:
        recorder = EventRecorder(client, settings.identity)
        recorder.start()
        for _ in range(3):  # the CO retrying a refused publish
            recorder.emit(Target.pvc(NAMESPACE, "data"), WARNING, "AttachRefused", "full")
        recorder.emit(Target.pvc(NAMESPACE, "data"), WARNING, "AttachRefused", "other")
        await recorder.close(grace=10)
    events = [e for e in kube.events() if e["reason"] == "AttachRefused"]
    counts = sorted((e["message"], e["count"]) for e in events)
    assert counts == [("full", 3), ("other", 1)]
    full = next(e for e in events if e["message"] == "full")
    assert full["lastTimestamp"] >= full["firstTimestamp"]
