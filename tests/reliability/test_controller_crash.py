"""SIGKILL the controller process at every step of an attach or detach cycle, restart it, and
check that the instance runs again, the disk's attachment is consistent and the CO's retried
RPC succeeds.

This runs the real ``oxide-csi serve --mode controller`` process against a simulator in the
test process. A failpoint (``OXIDE_CSI_FAILPOINTS``) makes the process kill itself at the named
step: after recording intent, after stopping the instance, after applying the first change,
and right before starting the instance again.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from oxide_csi import failpoints
from oxide_csi.csi_v1 import csi_pb2, csi_pb2_grpc
from oxide_sim import SimConfig, SimulatorServer
from tests.controller.conftest import mount_cap
from tests.plugin_process import wait_until
from tests.reliability.report import record

TOKEN = "oxide-token-crashtest0123456789abcdef"
STEPS = (
    failpoints.ATTACH_AFTER_RECORD,
    failpoints.ATTACH_AFTER_STOP,
    failpoints.ATTACH_AFTER_APPLY_ONE,
    failpoints.ATTACH_BEFORE_START,
)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimulatorServer]:
    cfg = SimConfig(
        token=TOKEN, instances=1, stop_seconds=0.1, start_seconds=0.1, state_dir=tmp_path / "sim"
    )
    with SimulatorServer(cfg) as server:
        yield server


def _instance(sim: SimulatorServer) -> dict[str, Any]:
    stats = httpx.get(f"{sim.url}/sim/stats", timeout=10).json()
    found: dict[str, Any] = stats["instances"]["instance-0"]
    return found


def _disk(sim: SimulatorServer, disk_id: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    found: dict[str, Any] = httpx.get(
        f"{sim.url}/v1/disks/{disk_id}", headers=headers, timeout=10
    ).json()
    return found


class Controller:
    """Starts controller processes on one socket and state directory."""

    def __init__(self, sim: SimulatorServer, factory: Any, env: dict[str, str], tmp: Path):
        self.endpoint = f"unix://{tmp / 'ctl.sock'}"
        self.args = [
            "serve",
            "--mode",
            "controller",
            "--endpoint",
            self.endpoint,
            "--state-dir",
            str(tmp / "state"),
            "--attach-batch-window",
            "0.1",
        ]
        self.env = {**env, "OXIDE_HOST": sim.url, "OXIDE_TOKEN": TOKEN, "OXIDE_PROJECT": "default"}
        self.factory = factory
        self.tmp = tmp

    def start(self, failpoint: str = "") -> tuple[Any, csi_pb2_grpc.ControllerStub]:
        env = {**self.env, failpoints.ENV: failpoint} if failpoint else self.env
        proc = self.factory(self.args, env, self.tmp)
        return proc, csi_pb2_grpc.ControllerStub(proc.wait_ready(self.endpoint))


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("operation", ["attach", "detach"])
def test_killed_mid_cycle_then_restarted(
    sim: SimulatorServer, plugin_factory, plugin_env, short_tmp: Path, step: str, operation: str
) -> None:
    ctl = Controller(sim, plugin_factory, plugin_env, short_tmp)
    instance_id = str(_instance(sim)["id"])
    first, stub = ctl.start("" if operation == "detach" else step)
    create = csi_pb2.CreateVolumeRequest(name="pvc-crash", volume_capabilities=[mount_cap()])
    vol = stub.CreateVolume(create, timeout=30).volume
    publish = csi_pb2.ControllerPublishVolumeRequest(
        volume_id=vol.volume_id, node_id=instance_id, volume_capability=mount_cap()
    )
    unpublish = csi_pb2.ControllerUnpublishVolumeRequest(
        volume_id=vol.volume_id, node_id=instance_id
    )
    retried: Any = publish
    if operation == "detach":
        stub.ControllerPublishVolume(publish, timeout=30)
        first.terminate()
        assert first.wait() == 0
        first, stub = ctl.start(step)
        retried = unpublish
    call = stub.ControllerPublishVolume if operation == "attach" else stub.ControllerUnpublishVolume

    with pytest.raises(grpc.RpcError) as failed:
        call(retried, timeout=30)
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE  # the process died mid-call
    assert first.wait() == -9
    assert f"failpoint {step} hit" in first.output()

    revived, stub = ctl.start()
    wait_until(lambda: _instance(sim)["state"] == "running", "recovery to start the instance")
    call = stub.ControllerPublishVolume if operation == "attach" else stub.ControllerUnpublishVolume
    call(retried, timeout=30)  # the CO's retry succeeds
    state = _disk(sim, vol.volume_id)["state"]
    if operation == "attach":
        assert state == {"state": "attached", "instance": instance_id}
    else:
        assert state == {"state": "detached"}
    assert _instance(sim)["state"] == "running"
    record(
        f"controller crash: SIGKILL at {step} during {operation}: instance running again, "
        f"disk {state['state']}, retried RPC succeeded"
    )
    revived.terminate()
    assert revived.wait() == 0
