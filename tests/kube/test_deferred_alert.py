"""A deletion owed longer than ``--deferred-delete-alert-after``: the recovery pass tells the
instance's Node with a Warning Event (counted up, not repeated), and the metrics show how much
waits and for how long (``oxide_csi_deferred_deletion_oldest_seconds``, behind the chart's
alert). Real Oxide calls to the simulator, real Events to the test API server."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

from kube_sim import KubeSim
from oxide_csi.controller.attach.ledger_file import FileLedgerStore
from oxide_csi.controller.attach.released import ReleasedDisks
from oxide_csi.kube.deferred_events import REASON, overdue_events
from oxide_csi.kube.events import EventRecorder
from oxide_csi.kube.nodes import NodeGate
from oxide_csi.metrics import PluginMetrics
from oxide_csi.metrics.ledger import track_ledger
from oxide_csi.oxide import OxideClient
from oxide_sim import SimulatorServer
from tests.controller.attach.conftest import client_config
from tests.kube.harness import OXIDE_TOKEN, add_node
from tests.kube.inproc import client_for, controller_settings
from tests.plugin_process import wait_until

GIB = 1 << 30
DAY = 86400.0


async def test_an_overdue_deletion_warns_on_the_node_and_in_metrics(
    sim: SimulatorServer, kube: KubeSim, tmp_path: Path
) -> None:
    add_node(kube, sim)  # Node "node-instance-0", providerID oxide://<instance id>
    now = [1_000_000.0]
    async with (
        OxideClient(dataclasses.replace(client_config(sim.url), token=OXIDE_TOKEN)) as oxide,
        client_for(controller_settings(kube, tmp_path, "a")) as client,
    ):
        released = ReleasedDisks(
            oxide, FileLedgerStore(tmp_path / "released"), clock=lambda: now[0]
        )
        recorder = EventRecorder(client, "ctl-a")
        recorder.start()
        released.on_overdue = overdue_events(NodeGate(client), recorder)
        released.alert_after = DAY
        metrics = PluginMetrics(process=False)
        track_ledger(metrics.registry, released.figures)

        inst = await oxide.get_instance("instance-0")
        kept, owed = [await oxide.create_disk(f"disk-alert-{i}", size=GIB) for i in range(2)]
        await oxide.stop_instance(inst.id)
        await oxide.wait_instance(inst.id, {"stopped"})
        for disk in (kept, owed):
            await oxide.attach_disk(inst.id, disk.id)
            await released.release(inst.id, inst.name, await oxide.get_disk(disk.id))
        assert await released.owe_delete(await oxide.get_disk(owed.id))

        def value(name: str) -> float | None:
            return metrics.registry.get_sample_value(name)

        await released.settle_all(deadline=asyncio.get_running_loop().time() + 30)
        assert value("oxide_csi_released_disks") == 1
        assert value("oxide_csi_deferred_deletions") == 1
        assert value("oxide_csi_deferred_deletion_oldest_seconds") == 0
        now[0] += DAY + 60  # a day and a minute later, still no cycle
        assert value("oxide_csi_deferred_deletion_oldest_seconds") == DAY + 60
        await released.settle_all(deadline=asyncio.get_running_loop().time() + 30)
        await released.settle_all(deadline=asyncio.get_running_loop().time() + 30)
        await recorder.close(grace=10)

    def stale() -> list[dict[str, Any]]:
        return [e for e in kube.events() if e["reason"] == REASON]

    await asyncio.to_thread(wait_until, lambda: bool(stale()), "the Warning Event")
    [event] = stale()
    assert event["type"] == "Warning"
    assert event["involvedObject"]["kind"] == "Node"
    assert event["involvedObject"]["name"] == "node-instance-0"
    assert owed.name in str(event["message"])
    assert "release-instance instance-0" in str(event["message"])
    assert event.get("count", 1) == 2  # counted up, one Event
