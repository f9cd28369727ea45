"""The hooks feed the right series, plugins in one process keep separate registries, and the
record store wrapper counts what is durable."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from prometheus_client import generate_latest

from oxide_csi.controller.attach import (
    AttachRecord,
    CycleReport,
    OpKind,
    OpRecord,
    Phase,
)
from oxide_csi.metrics import ObservedRecordStore, PluginMetrics
from tests.controller.attach.memory_store import MemoryAttachRecordStore


def value(metrics: PluginMetrics, name: str, **labels: str) -> float:
    found = metrics.registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


def test_grpc_calls_counted_by_method_and_code() -> None:
    metrics = PluginMetrics("controller")
    metrics.on_call("CreateVolume", "OK", 0.02)
    metrics.on_call("CreateVolume", "OK", 0.03)
    metrics.on_call("CreateVolume", "ALREADY_EXISTS", 0.01)
    assert value(metrics, "oxide_csi_grpc_requests_total", method="CreateVolume", code="OK") == 2
    assert (
        value(
            metrics,
            "oxide_csi_grpc_requests_total",
            method="CreateVolume",
            code="ALREADY_EXISTS",
        )
        == 1
    )
    count = "oxide_csi_grpc_request_duration_seconds_count"
    assert value(metrics, count, method="CreateVolume", code="OK") == 2
    total = value(
        metrics, "oxide_csi_grpc_request_duration_seconds_sum", method="CreateVolume", code="OK"
    )
    assert abs(total - 0.05) < 1e-9


def test_oxide_requests_retries_and_missing_responses() -> None:
    metrics = PluginMetrics("controller")
    tpl = "/v1/instances/{instance}/start"
    metrics.on_request("POST", tpl, 507, 0.1, 1)
    metrics.on_request("POST", tpl, None, 0.2, 2)
    metrics.on_request("POST", tpl, 202, 0.1, 3)
    name = "oxide_csi_oxide_requests_total"
    assert value(metrics, name, method="POST", endpoint=tpl, status="507") == 1
    assert value(metrics, name, method="POST", endpoint=tpl, status="none") == 1
    assert value(metrics, name, method="POST", endpoint=tpl, status="202") == 1
    assert value(metrics, "oxide_csi_oxide_retries_total", method="POST", endpoint=tpl) == 2
    attempts = "oxide_csi_oxide_request_duration_seconds_count"
    assert value(metrics, attempts, method="POST", endpoint=tpl) == 3


def test_cycle_reports() -> None:
    metrics = PluginMetrics("controller")
    metrics.on_cycle(CycleReport("i", 3, True, True, stopped_seconds=4.0, ok=True))
    metrics.on_cycle(CycleReport("i", 2, True, False, stopped_seconds=None, ok=False))
    # A recovery that only starts the instance again: no batch, no stop.
    metrics.on_cycle(CycleReport("i", 0, False, True, stopped_seconds=9.0, ok=True))
    assert value(metrics, "oxide_csi_attach_cycles_total", result="ok") == 2
    assert value(metrics, "oxide_csi_attach_cycles_total", result="failed") == 1
    assert value(metrics, "oxide_csi_attach_instance_stops_total") == 2
    assert value(metrics, "oxide_csi_attach_instance_starts_total") == 2
    assert value(metrics, "oxide_csi_attach_batch_size_count") == 2  # the empty batch is no batch
    assert value(metrics, "oxide_csi_attach_batch_size_sum") == 5
    assert value(metrics, "oxide_csi_attach_instance_stopped_seconds_count") == 2
    assert value(metrics, "oxide_csi_attach_instance_stopped_seconds_sum") == 13.0
    # The bucket a 4 s outage falls into, and the one below it.
    name = "oxide_csi_attach_instance_stopped_seconds_bucket"
    assert value(metrics, name, le="5.0") == 1
    assert value(metrics, name, le="2.5") == 0


def test_in_flight_is_read_at_scrape_time() -> None:
    metrics = PluginMetrics("controller")
    pending = [1, 2]
    metrics.track_in_flight(lambda: len(pending))
    assert value(metrics, "oxide_csi_attach_operations_in_flight") == 2
    pending.clear()
    assert value(metrics, "oxide_csi_attach_operations_in_flight") == 0


def test_two_plugins_in_one_process_do_not_collide() -> None:
    first, second = PluginMetrics("controller"), PluginMetrics("node", process=False)
    first.on_call("Probe", "OK", 0.001)
    assert value(first, "oxide_csi_grpc_requests_total", method="Probe", code="OK") == 1
    assert value(second, "oxide_csi_grpc_requests_total", method="Probe", code="OK") == 0
    assert value(second, "oxide_csi_build_info", version=_version(), mode="node") == 1
    text = generate_latest(first.registry).decode()
    assert "process_resident_memory_bytes" in text
    assert "process_resident_memory_bytes" not in generate_latest(second.registry).decode()


def _version() -> str:
    from oxide_csi import __version__

    return __version__


async def test_record_store_counts_records_and_operations() -> None:
    metrics = PluginMetrics("controller", process=False)
    inner = MemoryAttachRecordStore()
    left_behind = AttachRecord(
        "inst-a",
        "a",
        was_running=True,
        phase=Phase.APPLYING,
        ops=(OpRecord(OpKind.ATTACH, "d1"), OpRecord(OpKind.DETACH, "d2")),
    )
    await inner.save(left_behind)  # what a crashed predecessor left on disk
    store = ObservedRecordStore(inner, metrics.set_records)
    assert [r.instance_id for r in await store.load_all()] == ["inst-a"]
    assert value(metrics, "oxide_csi_attach_records_pending") == 1
    assert value(metrics, "oxide_csi_attach_record_operations_pending") == 2

    fresh = AttachRecord("inst-b", "b", True, Phase.STOPPING, (OpRecord(OpKind.ATTACH, "d3"),))
    await store.save(fresh)
    assert value(metrics, "oxide_csi_attach_records_pending") == 2
    assert value(metrics, "oxide_csi_attach_record_operations_pending") == 3
    assert await inner.load("inst-b") == fresh  # really delegated

    await store.delete("inst-a")
    await store.delete("inst-a")  # deleting twice is harmless
    assert value(metrics, "oxide_csi_attach_records_pending") == 1
    assert value(metrics, "oxide_csi_attach_record_operations_pending") == 1
    assert await inner.load("inst-a") is None


async def test_longest_stopped_instance_is_timed_from_its_record() -> None:
    """The alert's metric: how long an instance the plugin stopped has been off."""
    metrics = PluginMetrics("controller", process=False)
    inner = MemoryAttachRecordStore()
    an_hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    await inner.save(AttachRecord("inst-a", "a", True, Phase.STARTING, updated=an_hour_ago))
    now = [time.time()]
    store = ObservedRecordStore(inner, metrics.set_records, clock=lambda: now[0])
    metrics.track_stopped(store.longest_stopped_seconds)
    name = "oxide_csi_attach_instance_stopped_longest_seconds"
    assert value(metrics, name) == 0
    await store.load_all()  # a predecessor's record: off since at least its last update
    assert 3590 < value(metrics, name) < 3610

    await store.save(AttachRecord("inst-b", "b", True, Phase.STOPPING))
    await store.delete("inst-a")
    now[0] += 30
    assert 29 < value(metrics, name) < 40
    await store.save(AttachRecord("inst-b", "b", True, Phase.STARTING))  # same cycle goes on
    now[0] += 30
    assert 59 < value(metrics, name) < 70
    await store.delete("inst-b")
    assert value(metrics, name) == 0
