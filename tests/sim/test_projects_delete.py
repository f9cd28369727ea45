"""More than one project (``--extra-project``), and deleting an instance."""

from __future__ import annotations

from pathlib import Path

import pytest

from oxide_sim import SimulatorServer
from tests.sim.conftest import SimFactory
from tests.sim.helpers import (
    P,
    assert_error,
    client,
    create_disk,
    disk,
    instance,
    stop_instance,
    wait_for,
)


def test_extra_projects_hold_one_running_instance_each(make_sim: SimFactory) -> None:
    sim = make_sim(extra_projects=["team-a", "team-b"])
    with client(sim) as c:
        for team in ("team-a", "team-b"):
            assert c.get(f"/v1/projects/{team}").status_code == 200
            listed = c.get("/v1/instances", params={"project": team}).json()["items"]
            assert [i["name"] for i in listed] == [f"{team}-0"]
            inst = listed[0]
            assert inst["run_state"] == "running" and inst["boot_disk_id"]
            boot = disk(c, inst["boot_disk_id"])
            assert boot["state"] == {"state": "attached", "instance": inst["id"]}
            assert boot["project_id"] == inst["project_id"]
        ours = c.get("/v1/instances", params=P).json()["items"]
        assert {i["name"] for i in ours} == {"instance-0", "instance-1"}
        other = c.get("/v1/instances/team-a-0", params={"project": "team-a"}).json()
        assert other["project_id"] != ours[0]["project_id"]
        # Attaching across projects is refused, as Nexus does.
        mine = create_disk(c, "mine")
        c.post(f"/v1/instances/{other['id']}/stop")
        wait_for(
            lambda: c.get(f"/v1/instances/{other['id']}").json()["run_state"] == "stopped",
            "team-a-0 to stop",
        )
        r = c.post(f"/v1/instances/{other['id']}/disks/attach", json={"disk": mine["id"]})
        assert_error(r, 400, "InvalidRequest", "same project")


def test_extra_projects_survive_a_restart(make_sim: SimFactory, tmp_path: Path) -> None:
    first = make_sim(extra_projects=["team-a"], state_dir=tmp_path)
    with client(first) as c:
        before = c.get("/v1/instances/team-a-0", params={"project": "team-a"}).json()["id"]
    first.stop()
    again: SimulatorServer = make_sim(extra_projects=["team-a"], state_dir=tmp_path)
    with client(again) as c:
        items = c.get("/v1/instances", params={"project": "team-a"}).json()["items"]
        assert [i["id"] for i in items] == [before]


def test_delete_needs_a_stopped_instance_and_detaches_its_disks(make_sim: SimFactory) -> None:
    sim = make_sim()
    with client(sim) as c:
        inst = instance(c)
        data = create_disk(c, "data")
        r = c.delete("/v1/instances/instance-0", params=P)
        assert_error(r, 400, "InvalidRequest", "has not yet fully stopped")
        stop_instance(c)
        attach = c.post(
            "/v1/instances/instance-0/disks/attach", params=P, json={"disk": data["id"]}
        )
        assert attach.status_code == 202

        r = c.delete(f"/v1/instances/{inst['id']}")
        assert r.status_code == 204 and r.content == b""

        assert c.get(f"/v1/instances/{inst['id']}").status_code == 404
        for disk_id in (data["id"], inst["boot_disk_id"]):
            assert disk(c, disk_id)["state"] == {"state": "detached"}  # kept, not deleted
        assert c.delete(f"/v1/instances/{inst['id']}").status_code == 404


def test_extra_project_flag_is_repeatable() -> None:
    from oxide_sim.cli import _parser, config_from_args

    args = _parser().parse_args(["--extra-project", "team-a", "--extra-project", "team-b"])
    assert config_from_args(args, "token").extra_projects == ["team-a", "team-b"]


def test_extra_project_names_are_checked() -> None:
    from oxide_sim.cli import _parser

    for bad in ("Team", "x" * 62, "team-"):
        with pytest.raises(SystemExit):
            _parser().parse_args(["--extra-project", bad])
