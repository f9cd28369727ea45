"""The attach coordinator's cycle hook and the record gauge, against the simulator: a good
cycle, a cycle whose start keeps failing (507) and leaves a record behind, and the recovery
that finally starts the instance -- whose off time spans both cycles."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from oxide_csi import errors
from oxide_csi.controller.attach import (
    AttachCoordinator,
    StartPolicy,
)
from oxide_csi.metrics import ObservedRecordStore, PluginMetrics
from oxide_csi.oxide import OxideClient, OxideConfig
from oxide_sim import SimConfig, SimulatorServer
from tests.controller.attach.memory_store import MemoryAttachRecordStore

TOKEN = "oxide-token-metricstests0123456789ab"
GIB = 1 << 30


def value(metrics: PluginMetrics, name: str, **labels: str) -> float:
    found = metrics.registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


async def test_cycles_failures_and_recovery_are_counted(tmp_path: Path) -> None:
    cfg = SimConfig(token=TOKEN, instances=1, stop_seconds=0.05, start_seconds=0.05)
    metrics = PluginMetrics("controller", process=False)
    with SimulatorServer(cfg) as sim, httpx.Client(base_url=sim.url, timeout=10) as hooks:
        client_cfg = OxideConfig(
            host=sim.url, token=TOKEN, project="default", poll_initial=0.02, poll_max=0.05
        )
        async with OxideClient(client_cfg, on_request=metrics.on_request) as client:
            coordinator = AttachCoordinator(
                client,
                record=ObservedRecordStore(MemoryAttachRecordStore(), metrics.set_records),
                batch_window=0.05,
                op_timeout=1.0,
                start_policy=StartPolicy(initial=0.05, maximum=0.1),
                on_cycle=metrics.on_cycle,
            )
            metrics.track_in_flight(coordinator.in_flight)
            await coordinator.start()
            try:
                disk = await client.create_disk("metrics-disk", size=GIB)
                await coordinator.attach(disk.id, "instance-0", deadline=time.monotonic() + 30)
                assert value(metrics, "oxide_csi_attach_cycles_total", result="ok") == 1
                assert value(metrics, "oxide_csi_attach_instance_stops_total") == 1
                assert value(metrics, "oxide_csi_attach_instance_starts_total") == 1
                assert value(metrics, "oxide_csi_attach_batch_size_sum") == 1
                assert value(metrics, "oxide_csi_attach_instance_stopped_seconds_count") == 1
                assert value(metrics, "oxide_csi_attach_records_pending") == 0
                assert value(metrics, "oxide_csi_attach_operations_in_flight") == 0

                # Every start is refused for longer than the cycle may take.
                hooks.post("/sim/instances/instance-0/start-failures", json={"count": 1000})
                try:
                    await coordinator.detach(disk.id, "instance-0", deadline=time.monotonic() + 30)
                except errors.Unavailable:
                    pass
                else:
                    raise AssertionError("the detach succeeded without a start")
                assert value(metrics, "oxide_csi_attach_cycles_total", result="failed") == 1
                assert value(metrics, "oxide_csi_attach_instance_stops_total") == 2
                assert value(metrics, "oxide_csi_attach_instance_starts_total") == 1
                assert value(metrics, "oxide_csi_attach_records_pending") == 1
                assert value(metrics, "oxide_csi_attach_record_operations_pending") == 1
                start = "/v1/instances/{instance}/start"
                refused = value(
                    metrics,
                    "oxide_csi_oxide_requests_total",
                    method="POST",
                    endpoint=start,
                    status="507",
                )
                assert refused >= 2

                hooks.post("/sim/instances/instance-0/start-failures", json={"count": 0})
                await coordinator.recover()
                assert value(metrics, "oxide_csi_attach_cycles_total", result="ok") == 2
                assert value(metrics, "oxide_csi_attach_instance_starts_total") == 2
                assert value(metrics, "oxide_csi_attach_records_pending") == 0
                assert value(metrics, "oxide_csi_attach_record_operations_pending") == 0
                # The second outage runs from the failed cycle's stop to the recovery's start,
                # so it spans nearly the failed cycle's 1 s timeout (minus one backoff step).
                assert value(metrics, "oxide_csi_attach_instance_stopped_seconds_count") == 2
                total = value(metrics, "oxide_csi_attach_instance_stopped_seconds_sum")
                assert total >= 0.5
            finally:
                await coordinator.close()
        stats = hooks.get("/sim/stats").json()["instances"]["instance-0"]
    assert stats["state"] == "running"
    assert (stats["stops"], stats["starts"]) == (2, 2)
