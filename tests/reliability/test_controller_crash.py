"""SIGKILL the controller process at every step of an attach or detach cycle, restart it, and
check that the instance runs again, the disk's attachment is consistent and the CO's retried
RPC succeeds.

This runs the real ``oxide-csi serve --mode controller`` process against a simulator in the
test process. A failpoint (``OXIDE_CSI_FAILPOINTS``) makes the process kill itself at the named
step: after recording intent, after stopping the instance, after applying the first change,
and right before starting the instance again.

Both state backends: files in the state directory, and Kubernetes (the test API server), where
the restarted process is a new Lease holder that must wait out the dead one's Lease first.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from kube_sim import KubeSim
from oxide_csi import failpoints
from oxide_csi.csi_v1 import csi_pb2
from oxide_sim import SimulatorServer
from tests.controller.conftest import mount_cap
from tests.kube.harness import (
    NAMESPACE,
    Controller,
    add_node,
    sim_config,
    sim_disk,
    sim_instance,
    state_left,
)
from tests.plugin_process import wait_until
from tests.reliability.report import record

STEPS = (
    failpoints.ATTACH_AFTER_RECORD,
    failpoints.ATTACH_AFTER_STOP,
    failpoints.ATTACH_AFTER_APPLY_ONE,
    failpoints.ATTACH_BEFORE_START,
)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimulatorServer]:
    with SimulatorServer(sim_config(tmp_path, instances=1)) as server:
        yield server


@pytest.fixture(params=["file", "kubernetes"])
def backend(request: pytest.FixtureRequest) -> Iterator[KubeSim | None]:
    """None for the file backend; the test API server for the Kubernetes backend."""
    if request.param == "file":
        yield None
        return
    with KubeSim(namespaces=(NAMESPACE,)) as kube:
        yield kube


@pytest.mark.parametrize("step", STEPS)
@pytest.mark.parametrize("operation", ["attach", "detach", "released"])
def test_killed_mid_cycle_then_restarted(
    sim: SimulatorServer,
    backend: KubeSim | None,
    plugin_factory,
    plugin_env,
    short_tmp: Path,
    step: str,
    operation: str,
) -> None:
    if backend is not None:
        add_node(backend, sim)
    ctl = Controller(sim, backend, plugin_factory, plugin_env, short_tmp)
    if operation == "detach":  # the cycle an unpublish costs under the immediate policy
        ctl.args += ["--detach-policy", "immediate"]
    instance_id = str(sim_instance(sim)["id"])
    first, stub = ctl.start(step if operation == "attach" else "")
    released = None
    if operation == "released":  # a released disk leaves in the cycle of the next attach
        make = csi_pb2.CreateVolumeRequest(name="pvc-released", volume_capabilities=[mount_cap()])
        released = stub.CreateVolume(make, timeout=30).volume.volume_id
        stub.ControllerPublishVolume(
            csi_pb2.ControllerPublishVolumeRequest(
                volume_id=released, node_id=instance_id, volume_capability=mount_cap()
            ),
            timeout=30,
        )
        stub.ControllerUnpublishVolume(
            csi_pb2.ControllerUnpublishVolumeRequest(volume_id=released, node_id=instance_id),
            timeout=30,
        )
        first.terminate()
        assert first.wait() == 0
        first, stub = ctl.start(step)
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
    call = stub.ControllerUnpublishVolume if operation == "detach" else stub.ControllerPublishVolume

    with pytest.raises(grpc.RpcError) as failed:
        call(retried, timeout=30)
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE  # the process died mid-call
    assert first.wait() == -9
    assert f"failpoint {step} hit" in first.output()

    revived, stub = ctl.start()
    wait_until(lambda: sim_instance(sim)["state"] == "running", "recovery to start the instance")
    call = stub.ControllerUnpublishVolume if operation == "detach" else stub.ControllerPublishVolume
    call(retried, timeout=30)  # the CO's retry succeeds
    state = sim_disk(sim, vol.volume_id)["state"]
    if operation == "detach":
        assert state == {"state": "detached"}
    else:
        assert state == {"state": "attached", "instance": instance_id}
    if released is not None:  # detached in the recovered cycle, and out of the ledger
        assert sim_disk(sim, released)["state"] == {"state": "detached"}
        listed = stub.ListVolumes(csi_pb2.ListVolumesRequest(), timeout=30).entries
        assert {e.volume.volume_id: list(e.status.published_node_ids) for e in listed}[
            released
        ] == []
    assert sim_instance(sim)["state"] == "running"
    if backend is not None:
        assert state_left(backend) == []
    record(
        f"controller crash ({'file' if backend is None else 'kubernetes'} state): "
        f"SIGKILL at {step} during {operation}: instance running again, "
        f"disk {state['state']}, retried RPC succeeded"
    )
    revived.terminate()
    assert revived.wait() == 0
