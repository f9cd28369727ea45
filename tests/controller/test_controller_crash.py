"""The controller process is killed right after stopping an instance; a restarted controller must
bring the instance back and finish (or let a retry finish) the attach.

This runs the real ``oxide-csi serve --mode controller`` process twice against a simulator in
the test process. The first one has the ``attach.after_stop`` failpoint armed, so it SIGKILLs
itself at the worst moment: the instance is stopped, the attach not yet made.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from oxide_csi.csi_v1 import csi_pb2, csi_pb2_grpc
from oxide_sim import SimConfig, SimulatorServer
from tests.controller.conftest import mount_cap

TOKEN = "oxide-token-crashtest0123456789abcdef"


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimulatorServer]:
    cfg = SimConfig(
        token=TOKEN, instances=1, stop_seconds=0.1, start_seconds=0.1, state_dir=tmp_path / "sim"
    )
    with SimulatorServer(cfg) as server:
        yield server


def _instance(sim: SimulatorServer) -> dict[str, object]:
    stats = httpx.get(f"{sim.url}/sim/stats", timeout=10).json()
    found: dict[str, object] = stats["instances"]["instance-0"]
    return found


def _wait_for(predicate: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_killed_after_stop_then_restarted(
    sim: SimulatorServer, plugin_factory, plugin_env, short_tmp: Path
) -> None:
    endpoint = f"unix://{short_tmp / 'ctl.sock'}"
    args = [
        "serve",
        "--mode",
        "controller",
        "--endpoint",
        endpoint,
        "--state-dir",
        str(short_tmp / "state"),
        "--attach-batch-window",
        "0.1",
    ]
    env = {
        **plugin_env,
        "OXIDE_HOST": sim.url,
        "OXIDE_TOKEN": TOKEN,
        "OXIDE_PROJECT": "default",
        "OXIDE_CSI_FAILPOINTS": "attach.after_stop",
    }
    doomed = plugin_factory(args, env, short_tmp)
    stub = csi_pb2_grpc.ControllerStub(doomed.wait_ready(endpoint))
    vol = stub.CreateVolume(
        csi_pb2.CreateVolumeRequest(name="pvc-crash", volume_capabilities=[mount_cap()]),
        timeout=30,
    ).volume
    instance_id = str(_instance(sim)["id"])
    publish = csi_pb2.ControllerPublishVolumeRequest(
        volume_id=vol.volume_id, node_id=instance_id, volume_capability=mount_cap()
    )
    with pytest.raises(grpc.RpcError) as failed:
        stub.ControllerPublishVolume(publish, timeout=30)
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE  # the process died mid-call
    assert doomed.wait() == -9
    assert _instance(sim)["state"] == "stopped"  # left stopped by the dead controller

    del env["OXIDE_CSI_FAILPOINTS"]
    revived = plugin_factory(args, env, short_tmp)
    stub = csi_pb2_grpc.ControllerStub(revived.wait_ready(endpoint))
    _wait_for(lambda: _instance(sim)["state"] == "running", "recovery to start the instance")

    resp = stub.ControllerPublishVolume(publish, timeout=30)  # the CO's retry
    assert resp.publish_context
    disk = httpx.get(
        f"{sim.url}/v1/disks/{vol.volume_id}",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    ).json()
    assert disk["state"] == {"state": "attached", "instance": instance_id}
    assert _instance(sim)["state"] == "running"
    revived.terminate()
    assert revived.wait() == 0
