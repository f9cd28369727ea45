"""State survives a restart with the same state directory, and in-flight work completes."""

from __future__ import annotations

import json
from pathlib import Path

from tests.sim.conftest import SimFactory
from tests.sim.helpers import P, client, create_disk, instance, stop_instance, wait_run_state


def test_everything_survives_a_restart(make_sim: SimFactory, tmp_path: Path) -> None:
    first = make_sim(state_dir=tmp_path)
    with client(first) as c:
        stop_instance(c)
        d = create_disk(c, "kept")
        assert (
            c.post(
                "/v1/instances/instance-0/disks/attach", params=P, json={"disk": "kept"}
            ).status_code
            == 202
        )
        snap = c.post(
            "/v1/snapshots", params=P, json={"name": "s", "description": "", "disk": "kept"}
        ).json()
        disks = c.get("/v1/disks", params=P).json()
        instances = c.get("/v1/instances", params=P).json()
        me = c.get("/v1/me").json()
    first.stop()
    assert "kept" in (tmp_path / "state.json").read_text()

    second = make_sim(state_dir=tmp_path)
    with client(second) as c:
        assert c.get("/v1/disks", params=P).json()["items"] == disks["items"]
        assert c.get("/v1/instances", params=P).json()["items"] == instances["items"]
        assert c.get("/v1/me").json() == me
        assert c.get(f"/v1/snapshots/{snap['id']}").json() == snap
        assert c.get(f"/v1/disks/{d['id']}").json()["state"]["state"] == "attached"
        # names stay taken across the restart
        r = c.post(
            "/v1/disks",
            params=P,
            json={
                "name": "kept",
                "description": "",
                "size": 2**30,
                "disk_backend": {
                    "type": "distributed",
                    "disk_source": {"type": "blank", "block_size": 4096},
                },
            },
        )
        assert r.status_code == 400 and r.json()["error_code"] == "ObjectAlreadyExists"


def test_in_flight_transitions_complete_on_restart(make_sim: SimFactory, tmp_path: Path) -> None:
    first = make_sim(state_dir=tmp_path, stop_seconds=3600)
    with client(first) as c:
        assert c.post("/v1/instances/instance-0/stop", params=P).json()["run_state"] == "stopping"
    first.stop()
    saved = json.loads((tmp_path / "state.json").read_text())
    assert {i["name"]: i["run_state"] for i in saved["instances"]}["instance-0"] == "stopping"

    second = make_sim(state_dir=tmp_path)
    with client(second) as c:
        assert instance(c)["run_state"] == "stopped"
        assert c.post("/v1/instances/instance-0/start", params=P).status_code == 202
        wait_run_state(c, "instance-0", "running")


def test_restart_with_more_instances_adds_only_the_missing(
    make_sim: SimFactory, tmp_path: Path
) -> None:
    first = make_sim(state_dir=tmp_path, instances=1)
    with client(first) as c:
        original = instance(c)
    first.stop()
    second = make_sim(state_dir=tmp_path, instances=3)
    with client(second) as c:
        items = c.get("/v1/instances", params=P).json()["items"]
        assert [i["name"] for i in items] == ["instance-0", "instance-1", "instance-2"]
        assert items[0] == original


def test_a_failed_instance_is_still_restarted_after_a_restart(
    make_sim: SimFactory, tmp_path: Path
) -> None:
    first = make_sim(state_dir=tmp_path, auto_restart_seconds=3600)
    with client(first) as c:
        assert c.post("/sim/instances/instance-0/fail").status_code == 200
    first.stop()
    second = make_sim(state_dir=tmp_path, auto_restart_seconds=0.05)
    with client(second) as c:
        assert wait_run_state(c, "instance-0", "running")["time_last_auto_restarted"]
