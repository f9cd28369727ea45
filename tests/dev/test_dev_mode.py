"""``oxide-csi dev`` (the README's first command): one process, a simulated Oxide, real gRPC."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx

from oxide_csi import DRIVER_NAME
from oxide_csi.csi_v1 import csi_pb2, csi_pb2_grpc
from oxide_csi.tools import oxide_env


def test_dev_serves_identity_and_controller(plugin_factory, plugin_env, short_tmp: Path) -> None:
    endpoint = f"unix://{short_tmp / 'dev' / 'csi.sock'}"
    state = short_tmp / "state"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    args = [
        "dev",
        "--endpoint",
        endpoint,
        "--state-dir",
        str(state),
        "--stop-seconds",
        "0.05",
        "--metrics-address",
        f"127.0.0.1:{port}",
    ]
    plugin = plugin_factory(args, plugin_env, short_tmp)
    channel = plugin.wait_ready(endpoint)

    identity = csi_pb2_grpc.IdentityStub(channel)
    assert identity.GetPluginInfo(csi_pb2.GetPluginInfoRequest(), timeout=5).name == DRIVER_NAME
    caps = identity.GetPluginCapabilities(csi_pb2.GetPluginCapabilitiesRequest(), timeout=5)
    assert [c.service.type for c in caps.capabilities] == [
        csi_pb2.PluginCapability.Service.VOLUME_ACCESSIBILITY_CONSTRAINTS,
        csi_pb2.PluginCapability.Service.CONTROLLER_SERVICE,
    ]
    assert identity.Probe(csi_pb2.ProbeRequest(), timeout=10).ready.value is True

    cap = csi_pb2.VolumeCapability(
        mount=csi_pb2.VolumeCapability.MountVolume(),
        access_mode=csi_pb2.VolumeCapability.AccessMode(
            mode=csi_pb2.VolumeCapability.AccessMode.SINGLE_NODE_WRITER
        ),
    )
    controller = csi_pb2_grpc.ControllerStub(channel)
    request = csi_pb2.CreateVolumeRequest(name="pvc-dev", volume_capabilities=[cap])
    volume = controller.CreateVolume(request, timeout=30).volume
    scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    assert 'oxide_csi_grpc_requests_total{code="OK",method="CreateVolume"} 1.0' in scraped
    assert volume.capacity_bytes == 1 << 30
    # Dev plays instance-0 and must publish to it: the guard is off, and says so at start.
    assert "self power-off guard is OFF" in plugin.output()
    channel.close()
    plugin.terminate()
    assert plugin.wait() == 0
    assert (state / "sim").is_dir()  # the simulated rack's state is kept for the next run

    # restarted on the same state, the volume is still there (the rack survived the restart)
    again = plugin_factory(args, plugin_env, short_tmp)
    channel = again.wait_ready(endpoint)
    controller = csi_pb2_grpc.ControllerStub(channel)
    same = controller.CreateVolume(request, timeout=30).volume
    assert same.volume_id == volume.volume_id
    # the dev token is shown once, as the line a user sources (issue 20), and never logged
    token = oxide_env.read(state / oxide_env.FILE_NAME)["OXIDE_TOKEN"]
    with_token = [line for line in again.output().splitlines() if "oxide-token" in line]
    assert with_token == [f"export OXIDE_TOKEN={token}"]
    channel.close()
    again.terminate()
    assert again.wait() == 0


def test_dev_plays_an_older_release(plugin_factory, plugin_env, short_tmp: Path) -> None:
    """``--release v17``: the old disk shape, 8 slots (7 free beside the boot disk)."""
    endpoint = f"unix://{short_tmp / 'dev' / 'csi.sock'}"
    args = ["dev", "--endpoint", endpoint, "--state-dir", str(short_tmp / "state")]
    plugin = plugin_factory([*args, "--release", "v17"], plugin_env, short_tmp)
    channel = plugin.wait_ready(endpoint)
    node = csi_pb2_grpc.NodeStub(channel)
    info = node.NodeGetInfo(csi_pb2.NodeGetInfoRequest(), timeout=10)
    assert info.max_volumes_per_node == 7
    cap = csi_pb2.VolumeCapability(
        mount=csi_pb2.VolumeCapability.MountVolume(),
        access_mode=csi_pb2.VolumeCapability.AccessMode(
            mode=csi_pb2.VolumeCapability.AccessMode.SINGLE_NODE_WRITER
        ),
    )
    request = csi_pb2.CreateVolumeRequest(name="pvc-old", volume_capabilities=[cap])
    controller = csi_pb2_grpc.ControllerStub(channel)
    assert controller.CreateVolume(request, timeout=30).volume.volume_id
    assert "simulated Oxide release v17" in plugin.output()
    channel.close()
    plugin.terminate()
    assert plugin.wait() == 0
