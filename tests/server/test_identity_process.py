"""The real plugin process on a unix socket, spoken to over gRPC: Identity and shutdown."""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from oxide_csi import DRIVER_NAME, __version__
from oxide_csi.csi_v1 import csi_pb2, csi_pb2_grpc
from oxide_sim import SimConfig, SimulatorServer

TOKEN = "oxide-token-identitytest0123456789"


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(SimConfig(token=TOKEN, instances=1)) as server:
        yield server


Service = csi_pb2.PluginCapability.Service
ATTACHABLE = "csi.oxide.computer/attachable"


def _controller_env(env: dict[str, str], url: str) -> dict[str, str]:
    return {**env, "OXIDE_HOST": url, "OXIDE_TOKEN": TOKEN, "OXIDE_PROJECT": "default"}


def test_node_mode_identity(plugin_factory, plugin_env, short_tmp: Path) -> None:
    sock = short_tmp / "plugin" / "csi.sock"
    endpoint = f"unix://{sock}"
    args = ["serve", "--mode", "node", "--node-id", "node-1", "--endpoint", endpoint]
    args += ["--attachable=false"]
    plugin = plugin_factory(args, plugin_env, short_tmp)
    channel = plugin.wait_ready(endpoint)
    identity = csi_pb2_grpc.IdentityStub(channel)

    info = identity.GetPluginInfo(csi_pb2.GetPluginInfoRequest(), timeout=5)
    assert info.name == DRIVER_NAME
    assert info.vendor_version == __version__

    caps = identity.GetPluginCapabilities(csi_pb2.GetPluginCapabilitiesRequest(), timeout=5)
    # a node-only plugin offers no controller, but topology is the plugin's in either mode
    assert [c.service.type for c in caps.capabilities] == [Service.VOLUME_ACCESSIBILITY_CONSTRAINTS]
    node_info = csi_pb2_grpc.NodeStub(channel).NodeGetInfo(csi_pb2.NodeGetInfoRequest(), timeout=5)
    assert dict(node_info.accessible_topology.segments) == {ATTACHABLE: "false"}

    probe = identity.Probe(csi_pb2.ProbeRequest(), timeout=5)
    assert probe.HasField("ready") and probe.ready.value is True

    health = health_pb2_grpc.HealthStub(channel)
    status = health.Check(health_pb2.HealthCheckRequest(service="csi.v1.Identity"), timeout=5)
    assert status.status == health_pb2.HealthCheckResponse.SERVING

    # the socket is created owner/group only, in a directory the server made
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o660
    channel.close()
    plugin.terminate()
    assert plugin.wait() == 0
    assert not sock.exists(), "socket is removed on clean shutdown"


def test_controller_mode_identity_and_probe(
    plugin_factory, plugin_env, short_tmp: Path, sim: SimulatorServer
) -> None:
    endpoint = f"unix://{short_tmp}/c.sock"
    env = _controller_env(plugin_env, sim.url)
    plugin = plugin_factory(
        ["serve", "--mode", "controller", "--endpoint", endpoint], env, short_tmp
    )
    identity = csi_pb2_grpc.IdentityStub(plugin.wait_ready(endpoint))
    caps = identity.GetPluginCapabilities(csi_pb2.GetPluginCapabilitiesRequest(), timeout=5)
    kinds = [c.service.type for c in caps.capabilities]
    assert kinds == [Service.VOLUME_ACCESSIBILITY_CONSTRAINTS, Service.CONTROLLER_SERVICE]
    assert identity.Probe(csi_pb2.ProbeRequest(), timeout=10).ready.value is True
    assert TOKEN not in plugin.output()


def test_sigterm_lets_slow_call_finish(
    plugin_factory, plugin_env, short_tmp: Path, sim: SimulatorServer
) -> None:
    """A call that waits on a slow Oxide API completes although SIGTERM arrives meanwhile."""
    httpx.put(
        f"{sim.url}/sim/faults", json={"latency_ms": 1500, "latency_rate": 1.0}
    ).raise_for_status()
    endpoint = f"unix://{short_tmp}/c.sock"
    env = _controller_env(plugin_env, sim.url)
    plugin = plugin_factory(
        ["serve", "--mode", "controller", "--endpoint", endpoint], env, short_tmp
    )
    controller = csi_pb2_grpc.ControllerStub(plugin.wait_ready(endpoint))

    outcome: dict[str, object] = {}

    def slow_probe() -> None:
        try:
            outcome["response"] = controller.ListVolumes(csi_pb2.ListVolumesRequest(), timeout=20)
        except grpc.RpcError as exc:  # pragma: no cover - reported by the assertion below
            outcome["error"] = exc

    def disk_lists() -> int:
        """``GET /v1/disks`` the simulator has received (counted before its delay starts)."""
        stats = httpx.get(f"{sim.url}/sim/stats", timeout=10).json()
        return int(stats["requests"].get("GET /v1/disks", 0))

    caller = threading.Thread(target=slow_probe)
    before = disk_lists()
    started = time.monotonic()
    caller.start()
    # SIGTERM only once the call is waiting on the delayed response, however busy the machine.
    while disk_lists() == before:
        assert time.monotonic() - started < 20, "ListVolumes never reached the simulator"
        time.sleep(0.01)
    plugin.terminate()
    caller.join(20)
    assert "error" not in outcome, outcome.get("error")
    response = outcome["response"]
    assert isinstance(response, csi_pb2.ListVolumesResponse)
    assert time.monotonic() - started >= 1.4  # it really waited for the slow backend
    assert plugin.wait(20) == 0
