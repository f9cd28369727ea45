"""Done when: a controller killed while its instance is stopped, replaced by one with an empty
state directory (another node) but the same namespace, gets the instance started again and the
retried publish succeeds without a second stop; and a controller upgraded from the file
backend with a record in flight finishes that cycle.

Real processes: ``oxide-csi serve --mode controller`` against the simulated Oxide and the test
Kubernetes API server, SIGKILLed by a failpoint right after it stopped the instance.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from kube_sim import KubeSim
from oxide_csi import failpoints
from oxide_sim import SimulatorServer
from tests.kube.harness import (
    Controller,
    add_node,
    create_volume,
    held_leases,
    publish_request,
    sim_disk,
    sim_instance,
    state_left,
)
from tests.plugin_process import wait_until


def _kill_after_stop(ctl: Controller, volume_ids: list[str], instance_id: str) -> None:
    """Publish (one batch) with the after-stop failpoint: the process dies with the instance
    stopped."""
    first, stub = ctl.start(failpoints.ATTACH_AFTER_STOP)
    with ThreadPoolExecutor(max_workers=len(volume_ids)) as pool:
        calls = [
            pool.submit(stub.ControllerPublishVolume, publish_request(v, instance_id), timeout=30)
            for v in volume_ids
        ]
        for call in calls:
            with pytest.raises(grpc.RpcError) as died:
                call.result()
            assert died.value.code() == grpc.StatusCode.UNAVAILABLE
    assert first.wait() == -9
    assert f"failpoint {failpoints.ATTACH_AFTER_STOP} hit" in first.output()


def test_replacement_on_another_node_starts_the_instance(
    sim: SimulatorServer, kube: KubeSim, plugin_factory, plugin_env, short_tmp: Path
) -> None:
    instance_id = add_node(kube, sim)
    old = Controller(sim, kube, plugin_factory, plugin_env, short_tmp, "old")
    proc, stub = old.start()
    volume_ids = [create_volume(stub, "pvc-handover")]
    proc.terminate()
    assert proc.wait() == 0

    _kill_after_stop(old, volume_ids, instance_id)
    assert sim_instance(sim)["state"] == "stopped"
    assert len(state_left(kube)) == 1  # the promise of a start, in Kubernetes

    new = Controller(sim, kube, plugin_factory, plugin_env, short_tmp, "new")
    assert not new.state_dir.exists()  # another node: nothing on disk
    revived, stub = new.start()
    wait_until(lambda: sim_instance(sim)["state"] == "running", "the replacement to start it")
    for volume_id in volume_ids * 2:  # the CO's retries
        stub.ControllerPublishVolume(publish_request(volume_id, instance_id), timeout=30)
        assert sim_disk(sim, volume_id)["state"] == {"state": "attached", "instance": instance_id}
    assert sim_instance(sim)["stops"] == 1
    assert state_left(kube) == []
    assert held_leases(kube) == []
    revived.terminate()
    assert revived.wait() == 0


def test_upgrade_from_the_file_backend_finishes_the_cycle(
    sim: SimulatorServer, kube: KubeSim, plugin_factory, plugin_env, short_tmp: Path
) -> None:
    instance_id = add_node(kube, sim)
    before = Controller(sim, None, plugin_factory, plugin_env, short_tmp, "same")
    proc, stub = before.start()
    volume_id = create_volume(stub, "pvc-upgrade")
    proc.terminate()
    assert proc.wait() == 0
    _kill_after_stop(before, [volume_id], instance_id)
    record = before.state_dir / "attach" / f"{instance_id}.json"
    assert record.exists()

    after = Controller(sim, kube, plugin_factory, plugin_env, short_tmp, "same")
    upgraded, stub = after.start()
    wait_until(lambda: sim_instance(sim)["state"] == "running", "the upgraded one to start it")
    stub.ControllerPublishVolume(publish_request(volume_id, instance_id), timeout=30)

    assert sim_disk(sim, volume_id)["state"] == {"state": "attached", "instance": instance_id}
    assert sim_instance(sim)["stops"] == 1
    assert not record.exists()
    assert record.with_name(record.name + ".imported").exists()
    assert state_left(kube) == []
    upgraded.terminate()
    assert upgraded.wait() == 0
