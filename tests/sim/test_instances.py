"""Instance stop/start: asynchronous transitions, idempotency, 507 start failures, hooks."""

from __future__ import annotations

from typing import Any

import httpx

from oxide_sim import SimConfig, SimulatorServer
from tests.sim.conftest import SimFactory
from tests.sim.helpers import (
    TOKEN,
    P,
    assert_error,
    client,
    instance,
    stop_instance,
    wait_for,
    wait_run_state,
)


def test_stop_and_start_are_asynchronous(make_sim: SimFactory) -> None:
    sim = make_sim(stop_seconds=0.3, start_seconds=0.3)
    with client(sim) as c:
        before = instance(c)
        r = c.post("/v1/instances/instance-0/stop", params=P)
        assert r.status_code == 202
        assert r.json()["run_state"] == "stopping"
        assert r.json()["time_run_state_updated"] >= before["time_run_state_updated"]
        # stop again while stopping: accepted, nothing changes
        assert c.post("/v1/instances/instance-0/stop", params=P).json()["run_state"] == "stopping"
        r = c.post("/v1/instances/instance-0/start", params=P)
        assert_error(r, 409, "Conflict", "must finish stopping")
        wait_run_state(c, "instance-0", "stopped")
        assert c.post("/v1/instances/instance-0/stop", params=P).json()["run_state"] == "stopped"

        r = c.post(f"/v1/instances/{before['id']}/start")
        assert r.status_code == 202
        assert r.json()["run_state"] == "starting"
        assert c.post("/v1/instances/instance-0/start", params=P).json()["run_state"] == "starting"
        wait_run_state(c, "instance-0", "running")
        # the other instance was never touched
        assert instance(c, "instance-1")["run_state"] == "running"
        stats = c.get("/sim/stats").json()["instances"]
        assert (stats["instance-0"]["stops"], stats["instance-0"]["starts"]) == (1, 1)
        assert (stats["instance-1"]["stops"], stats["instance-1"]["starts"]) == (0, 0)


def test_start_failures_hook_gives_507(api: httpx.Client) -> None:
    stop_instance(api)
    r = api.post("/sim/instances/instance-0/start-failures", json={"count": 2})
    assert r.status_code == 200, r.text
    for _ in range(2):
        r = api.post("/v1/instances/instance-0/start", params=P)
        assert_error(r, 507, "InsufficientCapacity")
        assert instance(api)["run_state"] == "stopped"
    assert api.post("/v1/instances/instance-0/start", params=P).status_code == 202
    wait_run_state(api, "instance-0", "running")
    r = api.post("/sim/instances/nope/start-failures", json={"count": 1})
    assert r.status_code == 404
    r = api.post("/sim/instances/instance-0/start-failures", json={"count": -1})
    assert r.status_code == 400


def test_list_instances_and_their_disks(api: httpx.Client) -> None:
    items = api.get("/v1/instances", params=P).json()["items"]
    assert [i["name"] for i in items] == ["instance-0", "instance-1"]
    for inst in items:
        assert inst["hostname"] == inst["name"]
        disks = api.get(f"/v1/instances/{inst['name']}/disks", params=P).json()["items"]
        assert [d["id"] for d in disks] == [inst["boot_disk_id"]]


def test_instance_names_are_configurable(make_sim: SimFactory) -> None:
    sim = make_sim(instance_names=["node-a", "node-b", "node-c"], project="csi")
    with client(sim) as c:
        items = c.get("/v1/instances", params={"project": "csi"}).json()["items"]
        assert [i["name"] for i in items] == ["node-a", "node-b", "node-c"]


class RecordingHook:
    def __init__(self, fail_start: bool = False) -> None:
        self.calls: list[tuple[str, str, str, int]] = []
        self.fail_start = fail_start

    def before_running(self, inst: dict[str, Any], disks: list[dict[str, Any]]) -> None:
        self.calls.append(("before_running", inst["name"], inst["run_state"], len(disks)))
        if self.fail_start:
            raise RuntimeError("no VMM today")

    def after_stopped(self, inst: dict[str, Any], disks: list[dict[str, Any]]) -> None:
        self.calls.append(("after_stopped", inst["name"], inst["run_state"], len(disks)))


def test_instance_hooks_see_transitions() -> None:
    hook = RecordingHook()
    server = SimulatorServer(SimConfig(token=TOKEN, instances=1))
    server.add_instance_hook(hook)
    with server, client(server) as c:
        stop_instance(c)
        assert c.post("/v1/instances/instance-0/start", params=P).status_code == 202
        wait_run_state(c, "instance-0", "running")
    assert hook.calls == [
        ("after_stopped", "instance-0", "stopped", 1),
        ("before_running", "instance-0", "starting", 1),
    ]


def test_failing_start_hook_leaves_the_instance_failed() -> None:
    hook = RecordingHook(fail_start=True)
    with SimulatorServer(SimConfig(token=TOKEN, instances=1)) as server, client(server) as c:
        server.add_instance_hook(hook)
        stop_instance(c)
        assert c.post("/v1/instances/instance-0/start", params=P).status_code == 202
        wait_for(lambda: instance(c)["run_state"] == "failed", "failed")
        # a failed instance has no VMM: stop makes it stopped at once
        assert c.post("/v1/instances/instance-0/stop", params=P).json()["run_state"] == "stopped"
