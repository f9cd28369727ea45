"""``serve --mode node`` wiring: the Node service is registered, and dev mode's loop device
directory decides which loop devices are this node's disks."""

from __future__ import annotations

import dataclasses
import os

import grpc
import pytest

from oxide_csi.app import build_plugin
from oxide_csi.config import build_serve_config
from oxide_csi.csi_v1 import csi_pb2, csi_pb2_grpc
from oxide_csi.server.grpc_server import start_server
from tests.node.conftest import SERIAL_A
from tests.node.plane import Plane

pytestmark = pytest.mark.root


@pytest.mark.parametrize("dev_mode", [True, False])
async def test_serve_node_mode(plane: Plane, dev_mode: bool) -> None:
    if not dev_mode and any(n.startswith("nvme") for n in os.listdir("/sys/block")):
        pytest.skip("this machine has NVMe disks of its own")
    sock = plane.base / "serve.sock"
    config = build_serve_config(
        {
            "mode": "node",
            "endpoint": f"unix://{sock}",
            "node_id": "node-7",
            "kubelet_dir": str(plane.kubelet_dir),
            "max_disks_per_instance": "6",
        },
        {},
    )
    assert config.node is not None and config.node.loop_device_dir is None
    if dev_mode:
        node_settings = dataclasses.replace(config.node, loop_device_dir=plane.device_dir)
        config = dataclasses.replace(config, node=node_settings)
    plane.attach("instance-0-boot")
    plane.attach("disk-made-by-hand")
    plane.attach(SERIAL_A)

    plugin = await build_plugin(config)
    assert "csi.v1.Node" in plugin.spec.service_names
    assert "csi.v1.Controller" not in plugin.spec.service_names
    server = await start_server(plugin.spec)
    try:
        async with grpc.aio.insecure_channel(f"unix://{sock}") as channel:
            node = csi_pb2_grpc.NodeStub(channel)
            info = await node.NodeGetInfo(csi_pb2.NodeGetInfoRequest(), timeout=10)
            assert info.node_id == "node-7"
            # Dev mode: boot disk and the hand-made disk are this instance's, and count.
            # Otherwise loop devices are not disks at all (and this machine has no NVMe).
            assert info.max_volumes_per_node == (4 if dev_mode else 5)
            with pytest.raises(grpc.aio.AioRpcError) as expand:
                await node.NodeExpandVolume(
                    csi_pb2.NodeExpandVolumeRequest(volume_id="v", volume_path="/x"), timeout=10
                )
            assert expand.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        await server.stop(0)
        await plugin.aclose()
