"""The real plugin process with ``--metrics-address``: run a volume's lifecycle over gRPC, scrape
``/metrics`` over HTTP, and find every family moved -- and no volume id, name or token in it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from oxide_csi.csi_v1 import csi_pb2, csi_pb2_grpc
from oxide_sim import SimConfig, SimulatorServer
from tests.controller.conftest import mount_cap
from tests.metrics.test_endpoint import free_port

TOKEN = "oxide-token-metricsprocess0123456789"


class Scrape:
    """One scrape of ``/metrics``, parsed; ``value`` is 0 for a series that is absent."""

    def __init__(self, url: str) -> None:
        self.text = httpx.get(url, timeout=10).text
        self.samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
        for family in text_string_to_metric_families(self.text):
            for sample in family.samples:
                key = (sample.name, frozenset(sample.labels.items()))
                self.samples[key] = sample.value

    def value(self, name: str, **labels: str) -> float:
        return self.samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def sim(tmp_path: Path) -> Any:
    cfg = SimConfig(
        token=TOKEN, instances=1, stop_seconds=0.1, start_seconds=0.1, state_dir=tmp_path / "sim"
    )
    with SimulatorServer(cfg) as server:
        yield server


def test_controller_lifecycle_moves_the_counters(
    sim: SimulatorServer, plugin_factory: Any, plugin_env: dict[str, str], short_tmp: Path
) -> None:
    port = free_port()
    endpoint = f"unix://{short_tmp / 'ctl.sock'}"
    args = ["serve", "--mode", "controller", "--endpoint", endpoint]
    args += ["--state-dir", str(short_tmp / "state"), "--attach-batch-window", "0.1"]
    args += ["--metrics-address", f"127.0.0.1:{port}"]
    args += ["--detach-policy", "immediate"]  # the counters of a detach cycle, too
    env = {**plugin_env, "OXIDE_HOST": sim.url, "OXIDE_TOKEN": TOKEN, "OXIDE_PROJECT": "default"}
    proc = plugin_factory(args, env, short_tmp)
    stub = csi_pb2_grpc.ControllerStub(proc.wait_ready(endpoint))
    url = f"http://127.0.0.1:{port}/metrics"
    before = Scrape(url)
    assert before.value("oxide_csi_grpc_requests_total", method="CreateVolume", code="OK") == 0

    instance = httpx.get(f"{sim.url}/sim/stats", timeout=10).json()["instances"]["instance-0"]
    create = csi_pb2.CreateVolumeRequest(name="pvc-metrics", volume_capabilities=[mount_cap()])
    volume = stub.CreateVolume(create, timeout=30).volume
    ids = {"volume_id": volume.volume_id, "node_id": instance["id"]}
    publish = csi_pb2.ControllerPublishVolumeRequest(**ids, volume_capability=mount_cap())
    stub.ControllerPublishVolume(publish, timeout=30)
    stub.ControllerUnpublishVolume(csi_pb2.ControllerUnpublishVolumeRequest(**ids), timeout=30)
    stub.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=volume.volume_id), timeout=30)
    stub.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id="not-a-uuid"), timeout=30)

    after = Scrape(url)
    for method in ("CreateVolume", "ControllerPublishVolume", "ControllerUnpublishVolume"):
        assert after.value("oxide_csi_grpc_requests_total", method=method, code="OK") == 1
        count = "oxide_csi_grpc_request_duration_seconds_count"
        assert after.value(count, method=method, code="OK") == 1
    assert after.value("oxide_csi_grpc_requests_total", method="DeleteVolume", code="OK") == 2

    def oxide(method: str, endpoint: str, status: str) -> float:
        return after.value(
            "oxide_csi_oxide_requests_total", method=method, endpoint=endpoint, status=status
        )

    assert oxide("POST", "/v1/disks", "201") == 1
    assert oxide("POST", "/v1/instances/{instance}/stop", "202") == 2
    assert oxide("POST", "/v1/instances/{instance}/start", "202") == 2
    assert oxide("POST", "/v1/instances/{instance}/disks/attach", "202") == 1
    assert oxide("POST", "/v1/instances/{instance}/disks/detach", "202") == 1
    assert oxide("DELETE", "/v1/disks/{disk}", "204") == 1
    assert oxide("GET", "/v1/instances/{instance}", "200") >= 2
    assert after.value("oxide_csi_attach_cycles_total", result="ok") == 2
    assert after.value("oxide_csi_attach_instance_stops_total") == 2
    assert after.value("oxide_csi_attach_instance_starts_total") == 2
    assert after.value("oxide_csi_attach_batch_size_sum") == 2
    assert after.value("oxide_csi_attach_instance_stopped_seconds_count") == 2
    assert after.value("oxide_csi_attach_records_pending") == 0
    assert after.value("oxide_csi_attach_operations_in_flight") == 0
    assert after.value("process_resident_memory_bytes") > 0
    build = [k for k in after.samples if k[0] == "oxide_csi_build_info"]
    assert len(build) == 1 and ("mode", "controller") in build[0][1]

    # Bounded labels only: nothing that names a volume, a node or a credential.
    for secret_or_id in (volume.volume_id, "pvc-metrics", instance["id"], TOKEN, "not-a-uuid"):
        assert secret_or_id not in after.text
    proc.terminate()
    assert proc.wait() == 0


def test_node_mode_serves_metrics(
    plugin_factory: Any, plugin_env: dict[str, str], short_tmp: Path
) -> None:
    port = free_port()
    endpoint = f"unix://{short_tmp / 'node.sock'}"
    args = ["serve", "--mode", "node", "--endpoint", endpoint, "--node-id", "node-metrics"]
    args += ["--kubelet-dir", str(short_tmp / "kubelet")]
    env = {**plugin_env, "OXIDE_CSI_METRICS_ADDRESS": f"127.0.0.1:{port}"}
    proc = plugin_factory(args, env, short_tmp)
    identity = csi_pb2_grpc.IdentityStub(proc.wait_ready(endpoint))
    identity.GetPluginInfo(csi_pb2.GetPluginInfoRequest(), timeout=10)
    identity.Probe(csi_pb2.ProbeRequest(), timeout=10)
    scrape = Scrape(f"http://127.0.0.1:{port}/metrics")
    assert scrape.value("oxide_csi_grpc_requests_total", method="GetPluginInfo", code="OK") == 1
    assert scrape.value("oxide_csi_grpc_requests_total", method="Probe", code="OK") == 1
    assert scrape.value("oxide_csi_build_info", version=_version(), mode="node") == 1
    assert "oxide_csi_oxide_requests_total{" not in scrape.text  # a node never calls Oxide
    proc.terminate()
    assert proc.wait() == 0


def _version() -> str:
    from oxide_csi import __version__

    return __version__
