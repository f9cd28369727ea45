"""Attach and detach: the disk state machine, instance-state rules and the slot limit."""

from __future__ import annotations

import httpx
import pytest

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

ATTACH = "/v1/instances/{}/disks/attach"
DETACH = "/v1/instances/{}/disks/detach"


def _attach(c: httpx.Client, inst: str, disk_sel: str) -> httpx.Response:
    return c.post(ATTACH.format(inst), params=P, json={"disk": disk_sel})


def _detach(c: httpx.Client, inst: str, disk_sel: str) -> httpx.Response:
    return c.post(DETACH.format(inst), params=P, json={"disk": disk_sel})


def test_attach_and_detach_on_a_stopped_instance(api: httpx.Client) -> None:
    inst = stop_instance(api)
    d = create_disk(api, "vol")
    r = _attach(api, "instance-0", "vol")
    assert r.status_code == 202, r.text
    assert r.json()["state"] == {"state": "attached", "instance": inst["id"]}
    listed = api.get(f"/v1/instances/{inst['id']}/disks").json()["items"]
    assert d["id"] in [x["id"] for x in listed]
    # idempotent: attaching again to the same instance changes nothing
    assert _attach(api, "instance-0", d["id"]).json()["state"]["state"] == "attached"

    r = _detach(api, "instance-0", d["id"])
    assert r.status_code == 202, r.text
    assert r.json()["state"] == {"state": "detached"}
    assert disk(api, d["id"])["state"] == {"state": "detached"}
    # idempotent: detaching a detached disk succeeds
    assert _detach(api, "instance-0", "vol").status_code == 202


def test_full_state_machine_with_slow_attach(make_sim: SimFactory) -> None:
    sim = make_sim(attach_seconds=0.2, disk_create_seconds=0.2)
    with client(sim) as c:
        inst = stop_instance(c)
        d = create_disk(c, "vol")
        seen = [d["state"]["state"]]

        def reach(state: str) -> bool:
            now = disk(c, d["id"])["state"]
            if now["state"] != seen[-1]:
                seen.append(now["state"])
            if now["state"] in ("attaching", "attached", "detaching"):
                assert now["instance"] == inst["id"]
            return bool(now["state"] == state)

        wait_for(lambda: reach("detached"), "detached")
        r = _attach(c, "instance-0", "vol")
        assert r.status_code == 202
        assert r.json()["state"] == {"state": "attaching", "instance": inst["id"]}
        seen.append("attaching")
        assert_error(_detach(c, "instance-0", "vol"), 400, "InvalidRequest", "being attached")
        assert_error(c.delete(f"/v1/disks/{d['id']}"), 400, "InvalidRequest", '"attaching"')
        wait_for(lambda: reach("attached"), "attached")
        r = _detach(c, "instance-0", "vol")
        assert r.status_code == 202
        assert r.json()["state"] == {"state": "detaching", "instance": inst["id"]}
        seen.append("detaching")
        assert _detach(c, "instance-0", "vol").status_code == 202  # idempotent while detaching
        wait_for(lambda: reach("detached"), "detached")
        assert seen == ["creating", "detached", "attaching", "attached", "detaching", "detached"]


@pytest.mark.parametrize("op", [_attach, _detach])
def test_refused_while_the_instance_has_a_vmm(make_sim: SimFactory, op: object) -> None:
    sim = make_sim(start_seconds=0.3)
    with client(sim) as c:
        d = create_disk(c, "vol")
        stop_instance(c)
        if op is _detach:
            assert _attach(c, "instance-0", "vol").status_code == 202
        r = c.post("/v1/instances/instance-0/start", params=P)
        assert r.status_code == 202 and r.json()["run_state"] == "starting"
        assert_error(op(c, "instance-0", "vol"), 400, "InvalidRequest", "not fully stopped")  # type: ignore[operator]
        wait_for(lambda: instance(c)["run_state"] == "running", "running")
        assert_error(op(c, "instance-0", "vol"), 400, "InvalidRequest", "not fully stopped")  # type: ignore[operator]
        expected = "detached" if op is _attach else "attached"
        assert disk(c, d["id"])["state"]["state"] == expected


def test_attach_refused_while_stopping(make_sim: SimFactory) -> None:
    sim = make_sim(stop_seconds=0.5)
    with client(sim) as c:
        create_disk(c, "vol")
        r = c.post("/v1/instances/instance-0/stop", params=P)
        assert r.json()["run_state"] == "stopping"
        assert_error(_attach(c, "instance-0", "vol"), 400, "InvalidRequest", "not fully stopped")


def test_disk_attached_elsewhere(api: httpx.Client) -> None:
    stop_instance(api, "instance-0")
    stop_instance(api, "instance-1")
    create_disk(api, "vol")
    assert _attach(api, "instance-0", "vol").status_code == 202
    r = _attach(api, "instance-1", "vol")
    assert_error(r, 400, "InvalidRequest", 'cannot attach disk "vol": disk is attached to another')
    r = _detach(api, "instance-1", "vol")
    assert_error(r, 400, "InvalidRequest", 'cannot detach disk "vol": disk is attached to another')


def test_faulted_disk_cannot_be_attached(api: httpx.Client) -> None:
    stop_instance(api)
    d = create_disk(api, "vol")
    api.post(f"/sim/disks/{d['id']}/fault")
    assert_error(_attach(api, "instance-0", "vol"), 400, "InvalidRequest", "invalid state faulted")


def test_boot_disk_cannot_be_detached(api: httpx.Client) -> None:
    inst = stop_instance(api)
    r = _detach(api, "instance-0", str(inst["boot_disk_id"]))
    assert_error(r, 409, "Conflict", "boot disk cannot be detached")


@pytest.mark.parametrize("limit", [8, 3])
def test_slot_limit_counts_the_boot_disk(make_sim: SimFactory, limit: int) -> None:
    sim = make_sim(instances=1, max_disks_per_instance=limit)
    with client(sim) as c:
        inst = stop_instance(c)
        for i in range(limit - 1):
            create_disk(c, f"vol-{i}")
            assert _attach(c, "instance-0", f"vol-{i}").status_code == 202
        create_disk(c, "one-too-many")
        r = _attach(c, "instance-0", "one-too-many")
        assert_error(r, 400, "InvalidRequest", f"cannot attach more than {limit} disks to instance")
        listed = c.get(f"/v1/instances/{inst['id']}/disks").json()["items"]
        assert len(listed) == limit
        # a freed slot can be used again
        assert _detach(c, "instance-0", "vol-0").status_code == 202
        assert _attach(c, "instance-0", "one-too-many").status_code == 202


def test_disk_selector_by_name_uses_the_instance_project(api: httpx.Client) -> None:
    inst = stop_instance(api)
    d = create_disk(api, "vol")
    r = api.post(ATTACH.format(inst["id"]), json={"disk": "vol"})
    assert r.status_code == 202, r.text
    assert r.json()["id"] == d["id"]
    r = api.post(DETACH.format(inst["id"]), json={"disk": d["id"]})
    assert r.status_code == 202, r.text


def test_attach_body_errors(api: httpx.Client) -> None:
    stop_instance(api)
    assert_error(api.post(ATTACH.format("instance-0"), params=P, json={}), 400, None, "missing")
    r = api.post(ATTACH.format("instance-0"), params=P, json={"disk": "Not_A_Name"})
    assert_error(r, 400, None, "unable to parse JSON body")
    assert_error(_attach(api, "instance-0", "nope"), 404, "ObjectNotFound", "disk")
    assert_error(_attach(api, "nope", "nope"), 404, "ObjectNotFound", "instance")
