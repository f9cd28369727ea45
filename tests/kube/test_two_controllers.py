"""Done when: two controllers against one simulator and one test API server, both receiving
the same publishes, cause no more stops than one controller would, lose nothing and leave no
state behind; with the lease holder cut off from the API server (but not from Oxide), the
other takes over only after the fenced wait, and no instance is changed by both.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest

from kube_sim import KubeSim
from oxide_csi.csi_v1 import csi_pb2_grpc
from oxide_sim import SimulatorServer
from tests.kube.harness import (
    LEASE_SECONDS,
    OXIDE_CALL_SECONDS,
    Controller,
    add_node,
    create_volume,
    held_leases,
    publish_request,
    sim_config,
    sim_disk,
    sim_instance,
    state_left,
)
from tests.plugin_process import wait_until

#: What the CO retries (the external-attacher retries every error; these are the transient).
RETRIED = {
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.UNAVAILABLE,
}
CHANGE = re.compile(r"^/v1/instances/([^/]+)/(stop|start|disks/attach|disks/detach)$")


def publish_until_done(
    stub: csi_pb2_grpc.ControllerStub, volume_id: str, node_id: str, budget: float = 90
) -> None:
    deadline = time.monotonic() + budget
    while True:
        try:
            stub.ControllerPublishVolume(publish_request(volume_id, node_id), timeout=15)
            return
        except grpc.RpcError as exc:
            if exc.code() not in RETRIED or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def changes_by_controller(log: Path, instance_id: str) -> list[str]:
    """The controllers (by User-Agent) that changed the instance, in the order the changes
    were answered; consecutive repeats folded."""
    who: list[str] = []
    for line in log.read_text().splitlines():
        entry: dict[str, Any] = json.loads(line)
        match = CHANGE.match(entry["path"])
        if entry["method"] != "POST" or not match or match.group(1) != instance_id:
            continue
        agent = entry["request_headers"].get("user-agent", "")
        name = agent.partition("(")[2].partition("_")[0]
        if not who or who[-1] != name:
            who.append(name)
    return who


@pytest.fixture
def slow_sim(tmp_path: Path) -> Iterator[SimulatorServer]:
    """Stops take 3 s: long enough to cut the holder off while its instance is stopping."""
    cfg = sim_config(tmp_path, stop_seconds=3.0, traffic_log=tmp_path / "traffic.jsonl")
    with SimulatorServer(cfg) as server:
        yield server


def test_same_publishes_to_two_controllers_cost_one_stop_per_instance(
    sim: SimulatorServer, kube: KubeSim, plugin_factory, plugin_env, short_tmp: Path
) -> None:
    nodes = [add_node(kube, sim, "instance-0"), add_node(kube, sim, "instance-1")]
    controllers = [
        Controller(sim, kube, plugin_factory, plugin_env, short_tmp, name) for name in ("a", "b")
    ]
    for ctl in controllers:
        ctl.args[ctl.args.index("--attach-batch-window") + 1] = "3"  # one batch per instance
    procs, stubs = zip(*(ctl.start() for ctl in controllers), strict=True)
    work = [(create_volume(stubs[0], f"pvc-two-{i}"), nodes[i % 2]) for i in range(6)]

    with ThreadPoolExecutor(max_workers=12) as pool:
        calls = [
            pool.submit(publish_until_done, stub, volume_id, node)
            for volume_id, node in work
            for stub in stubs
        ]
        for call in calls:
            call.result()  # nothing lost: every publish, on both controllers, succeeded

    for volume_id, node in work:
        assert sim_disk(sim, volume_id)["state"] == {"state": "attached", "instance": node}
    for name in ("instance-0", "instance-1"):
        assert sim_instance(sim, name)["stops"] == 1  # as one controller batching them
        assert sim_instance(sim, name)["state"] == "running"
    assert state_left(kube) == []
    assert held_leases(kube) == []
    for proc in procs:
        proc.terminate()
        assert proc.wait() == 0


def test_a_holder_cut_off_from_kubernetes_is_fenced_and_the_other_takes_over(
    slow_sim: SimulatorServer,
    kube: KubeSim,
    plugin_factory,
    plugin_env,
    short_tmp: Path,
    tmp_path: Path,
) -> None:
    sim = slow_sim
    instance_id = add_node(kube, sim)
    a = Controller(sim, kube, plugin_factory, plugin_env, short_tmp, "a")
    b = Controller(sim, kube, plugin_factory, plugin_env, short_tmp, "b")
    proc_a, stub_a = a.start()
    proc_b, stub_b = b.start()
    volume_id = create_volume(stub_a, "pvc-partition")

    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(
            stub_a.ControllerPublishVolume, publish_request(volume_id, instance_id), timeout=60
        )
        wait_until(lambda: sim_instance(sim)["state"] == "stopping", "a to stop the instance")
        kube.block(a.token)  # a still reaches Oxide, no longer Kubernetes
        cut_off = time.monotonic()
        second = pool.submit(publish_until_done, stub_b, volume_id, instance_id)
        wait_until(lambda: sim_instance(sim)["state"] == "running", "b to start it again")
        running_after = time.monotonic() - cut_off
        second.result()
        with pytest.raises(grpc.RpcError) as fenced:
            first.result()
    # a stopped acting: at its next change for want of lease, or at the record write before
    # it (the API server does not answer a), whichever it reached first.
    assert fenced.value.code() == grpc.StatusCode.UNAVAILABLE
    assert re.search("lease|attach record", fenced.value.details() or "")

    # b waited for a's lease to expire by more than the longest Oxide call; a's last renewal
    # landed at most one renew period before the cut.
    assert running_after >= LEASE_SECONDS + OXIDE_CALL_SECONDS - LEASE_SECONDS / 6
    # a stopped, b attached and started: one hand-over, never back and forth.
    assert changes_by_controller(tmp_path / "traffic.jsonl", instance_id) == [
        "controller-a",
        "controller-b",
    ]
    assert sim_instance(sim)["stops"] == 1
    assert sim_disk(sim, volume_id)["state"] == {"state": "attached", "instance": instance_id}
    assert state_left(kube) == []

    kube.unblock(a.token)
    publish_until_done(stub_a, volume_id, instance_id)  # a's retry: already done
    assert sim_instance(sim)["stops"] == 1
    assert held_leases(kube) == []
    for proc in (proc_a, proc_b):
        proc.terminate()
        assert proc.wait() == 0
