"""Liveness does not depend on Oxide: an unreachable rack or an expired token never makes Probe
fail (the livenessprobe sidecar would restart the controller, abandoning its cycles), while
the logs, the metrics and the gRPC health service ``oxide`` say what is wrong."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from oxide_csi.csi_v1 import csi_pb2, csi_pb2_grpc
from oxide_sim import SimConfig, SimulatorServer
from tests.metrics.test_endpoint import free_port
from tests.plugin_process import wait_until

TOKEN = "oxide-token-livenesstest0123456789"


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(SimConfig(token=TOKEN, instances=1)) as server:
        yield server


def _metric(port: int, name: str) -> str:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return "\n".join(line for line in text.splitlines() if line.startswith(name))


def _problem_logged(output: str, reason: str) -> bool:
    for line in output.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == "Oxide API not usable" and event.get("reason") == reason:
            return True
    return False


@pytest.mark.parametrize(
    ("where", "token", "reason"),
    [
        ("http://127.0.0.1:9", TOKEN, "unreachable"),  # discard port: nothing listens
        ("sim", "oxide-token-expired000000000000000", "unauthorized"),
    ],
)
def test_probe_stays_ready_and_the_problem_is_reported(
    plugin_factory, plugin_env, short_tmp: Path, sim: SimulatorServer, where, token, reason
) -> None:
    endpoint = f"unix://{short_tmp}/c.sock"
    port = free_port()
    env = {
        **plugin_env,
        "OXIDE_HOST": sim.url if where == "sim" else where,
        "OXIDE_TOKEN": token,
        "OXIDE_PROJECT": "default",
        "OXIDE_CSI_METRICS_ADDRESS": f"127.0.0.1:{port}",
    }
    plugin = plugin_factory(
        ["serve", "--mode", "controller", "--endpoint", endpoint, "--log-format", "json"],
        env,
        short_tmp,
    )
    channel = plugin.wait_ready(endpoint)

    # Logs and metrics say what is wrong...
    wait_until(lambda: _problem_logged(plugin.output(), reason), f"the {reason} log line")
    assert f'reason="{reason}"}} 1.0' in _metric(port, "oxide_csi_oxide_api_problem")
    assert _metric(port, "oxide_csi_oxide_api_up").endswith(" 0.0")
    # ...readiness (the gRPC health service "oxide") too...
    health = health_pb2_grpc.HealthStub(channel)
    answer = health.Check(health_pb2.HealthCheckRequest(service="oxide"), timeout=5)
    assert answer.status == health_pb2.HealthCheckResponse.NOT_SERVING
    # ...while liveness only says the process works, however often it is asked.
    identity = csi_pb2_grpc.IdentityStub(channel)
    for _ in range(3):
        assert identity.Probe(csi_pb2.ProbeRequest(), timeout=5).ready.value is True
    assert plugin.proc.poll() is None
    assert token not in plugin.output()
    plugin.terminate()
    assert plugin.wait() == 0


def test_health_service_serves_when_oxide_is_usable(
    plugin_factory, plugin_env, short_tmp: Path, sim: SimulatorServer
) -> None:
    endpoint = f"unix://{short_tmp}/c.sock"
    env = {**plugin_env, "OXIDE_HOST": sim.url, "OXIDE_TOKEN": TOKEN, "OXIDE_PROJECT": "default"}
    plugin = plugin_factory(
        ["serve", "--mode", "controller", "--endpoint", endpoint], env, short_tmp
    )
    health = health_pb2_grpc.HealthStub(plugin.wait_ready(endpoint))

    def serving() -> bool:
        try:
            answer = health.Check(health_pb2.HealthCheckRequest(service="oxide"), timeout=5)
        except grpc.RpcError:  # NOT_FOUND until the first check has run
            return False
        return bool(answer.status == health_pb2.HealthCheckResponse.SERVING)

    wait_until(serving, "the oxide health service to serve")
    plugin.terminate()
    assert plugin.wait() == 0
