"""Power cycles that can never strand a node, against real controller processes.

* SIGKILL while the instance is stopping, restart on the same state, then unpublish the disk
  the dead process was attaching: the instance runs again and the disk ends detached (the
  crash leftover must not win over the later call).
* ``--controller-instance-id`` of instance-1: a publish there is FAILED_PRECONDITION and
  instance-1 is never stopped; an instance of another project is refused without a stop.
* SIGTERM while the instance is stopping: the process exits only once it is starting again.

The simulator stops an instance in 6 s here, as slowly as a rack, so each step above happens
while the instance is visibly ``stopping``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from oxide_csi.csi_v1 import csi_pb2
from oxide_sim import SimConfig, SimulatorServer
from tests.controller.conftest import mount_cap
from tests.kube.harness import OXIDE_TOKEN as TOKEN
from tests.kube.harness import Controller
from tests.plugin_process import wait_until
from tests.reliability.report import record

STOP_SECONDS = 6.0


@pytest.fixture
def slow_sim(tmp_path: Path) -> Iterator[SimulatorServer]:
    cfg = SimConfig(
        token=TOKEN,
        instances=2,
        extra_projects=["team-a"],
        stop_seconds=STOP_SECONDS,
        start_seconds=0.5,
        state_dir=tmp_path / "sim",
    )
    with SimulatorServer(cfg) as server:
        yield server


def _inst(sim: SimulatorServer, name: str) -> dict[str, Any]:
    found: dict[str, Any] = httpx.get(f"{sim.url}/sim/stats", timeout=10).json()["instances"][name]
    return found


def _disk_state(sim: SimulatorServer, disk_id: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    body = httpx.get(f"{sim.url}/v1/disks/{disk_id}", headers=headers, timeout=10).json()
    state: dict[str, Any] = body["state"]
    return state


def _publish_in_background(stub: Any, request: Any) -> threading.Thread:
    """A publish whose caller is cut off (the process dies or shuts down under it)."""

    def call() -> None:
        with contextlib.suppress(grpc.RpcError):  # expected: the process goes away mid-call
            stub.ControllerPublishVolume(request, timeout=60)

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    return thread


def _volume(stub: Any, name: str) -> str:
    request = csi_pb2.CreateVolumeRequest(name=name, volume_capabilities=[mount_cap()])
    volume_id: str = stub.CreateVolume(request, timeout=30).volume.volume_id
    return volume_id


def _publish(volume_id: str, node_id: str) -> csi_pb2.ControllerPublishVolumeRequest:
    return csi_pb2.ControllerPublishVolumeRequest(
        volume_id=volume_id, node_id=node_id, volume_capability=mount_cap()
    )


def test_sigkill_while_stopping_then_unpublish_ends_running_and_detached(
    slow_sim: SimulatorServer, plugin_factory, plugin_env, short_tmp: Path
) -> None:
    ctl = Controller(slow_sim, None, plugin_factory, plugin_env, short_tmp)
    node = str(_inst(slow_sim, "instance-0")["id"])
    first, stub = ctl.start()
    volume_id = _volume(stub, "pvc-killed")
    caller = _publish_in_background(stub, _publish(volume_id, node))
    wait_until(lambda: _inst(slow_sim, "instance-0")["state"] == "stopping", "the stop")

    first.proc.kill()  # SIGKILL while the instance is stopping
    assert first.wait() == -9
    caller.join(30)
    revived, stub = ctl.start()
    unpublish = csi_pb2.ControllerUnpublishVolumeRequest(volume_id=volume_id, node_id=node)
    stub.ControllerUnpublishVolume(unpublish, timeout=60)

    records = ctl.state_dir / "attach"
    wait_until(lambda: not any(records.glob("*.json")), "recovery to finish its record")
    wait_until(lambda: _inst(slow_sim, "instance-0")["state"] == "running", "the instance to run")
    assert _disk_state(slow_sim, volume_id) == {"state": "detached"}
    assert _inst(slow_sim, "instance-0")["stops"] == 1  # the dead process's stop, no other
    record("SIGKILL while stopping, then unpublish: instance running, disk detached")
    revived.terminate()
    assert revived.wait() == 0


def test_own_instance_and_other_projects_are_never_stopped(
    slow_sim: SimulatorServer, plugin_factory, plugin_env, short_tmp: Path
) -> None:
    own = str(_inst(slow_sim, "instance-1")["id"])
    foreign = str(_inst(slow_sim, "team-a-0")["id"])
    ctl = Controller(slow_sim, None, plugin_factory, plugin_env, short_tmp)
    ctl.args += ["--controller-instance-id", own]
    proc, stub = ctl.start()
    volume_id = _volume(stub, "pvc-guarded")

    with pytest.raises(grpc.RpcError) as refused:
        stub.ControllerPublishVolume(_publish(volume_id, own), timeout=30)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "runs this controller" in (refused.value.details() or "")
    with pytest.raises(grpc.RpcError) as foreign_refused:
        stub.ControllerPublishVolume(_publish(volume_id, foreign), timeout=30)
    assert foreign_refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "project" in (foreign_refused.value.details() or "")

    assert _inst(slow_sim, "instance-1")["stops"] == 0
    assert _inst(slow_sim, "team-a-0")["stops"] == 0
    assert _disk_state(slow_sim, volume_id) == {"state": "detached"}
    assert own in proc.output()  # the guard is logged at start
    proc.terminate()
    assert proc.wait() == 0


def test_sigterm_while_stopping_exits_only_once_the_instance_starts(
    slow_sim: SimulatorServer, plugin_factory, plugin_env, short_tmp: Path
) -> None:
    ctl = Controller(slow_sim, None, plugin_factory, plugin_env, short_tmp)
    ctl.args += ["--shutdown-grace", "1"]  # far shorter than the cycle: the cycle still wins
    node = str(_inst(slow_sim, "instance-0")["id"])
    proc, stub = ctl.start()
    volume_id = _volume(stub, "pvc-sigterm")
    caller = _publish_in_background(stub, _publish(volume_id, node))
    wait_until(lambda: _inst(slow_sim, "instance-0")["state"] == "stopping", "the stop")

    proc.terminate()
    assert proc.wait(timeout=60) == 0
    at_exit = _inst(slow_sim, "instance-0")["state"]
    assert at_exit in ("starting", "running"), f"exited with the instance {at_exit}"
    caller.join(30)
    wait_until(lambda: _inst(slow_sim, "instance-0")["state"] == "running", "the instance to run")
    assert _disk_state(slow_sim, volume_id) == {"state": "attached", "instance": node}
    assert "letting the cycle finish" in proc.output()
    record(f"SIGTERM while stopping: process exited with the instance {at_exit}")
