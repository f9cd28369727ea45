"""Snapshots and disks made from them."""

from __future__ import annotations

import uuid

import httpx

from tests.sim.conftest import SimFactory
from tests.sim.helpers import (
    GIB,
    P,
    assert_error,
    client,
    create_disk,
    snapshot_disk_body,
    wait_for,
)


def _snapshot(c: httpx.Client, name: str, disk: str) -> dict[str, object]:
    r = c.post("/v1/snapshots", params=P, json={"name": name, "description": "", "disk": disk})
    assert r.status_code == 201, r.text
    out: dict[str, object] = r.json()
    return out


def test_disk_from_snapshot(api: httpx.Client) -> None:
    src = create_disk(api, "src", size=2 * GIB, block_size=512)
    snap = _snapshot(api, "snap-1", "src")
    assert snap["disk_id"] == src["id"] and snap["size"] == 2 * GIB
    assert snap["state"] == "ready"
    assert api.get(f"/v1/snapshots/{snap['id']}").json() == snap
    assert api.get("/v1/snapshots/snap-1", params=P).json() == snap

    r = api.post("/v1/disks", params=P, json=snapshot_disk_body("copy", str(snap["id"]), 3 * GIB))
    assert r.status_code == 201, r.text
    copy = r.json()
    assert copy["snapshot_id"] == snap["id"]
    assert copy["block_size"] == 512  # the snapshot's, not chosen by the request
    assert copy["size"] == 3 * GIB

    r = api.post("/v1/disks", params=P, json=snapshot_disk_body("small", str(snap["id"]), GIB))
    assert_error(r, 400, "InvalidRequest", "must be greater than or equal to snapshot size")
    missing = str(uuid.uuid4())
    r = api.post("/v1/disks", params=P, json=snapshot_disk_body("none", missing))
    assert_error(r, 404, "ObjectNotFound", "snapshot")


def test_snapshot_of_attached_boot_disk(api: httpx.Client) -> None:
    boot = api.get("/v1/disks/instance-0-boot", params=P).json()
    snap = _snapshot(api, "boot-snap", str(boot["id"]))
    assert snap["disk_id"] == boot["id"]


def test_snapshot_rules(api: httpx.Client) -> None:
    create_disk(api, "d")
    _snapshot(api, "s", "d")
    body = {"name": "s", "description": "", "disk": "d"}
    assert_error(api.post("/v1/snapshots", params=P, json=body), 400, "ObjectAlreadyExists")
    body = {"name": "t", "description": "", "disk": "nope"}
    assert_error(api.post("/v1/snapshots", params=P, json=body), 404, "ObjectNotFound")
    listed = api.get("/v1/snapshots", params=P).json()["items"]
    assert [s["name"] for s in listed] == ["s"]
    # a snapshot and a disk may share a name: uniqueness is per resource type
    assert _snapshot(api, "d", "d")["name"] == "d"


def test_snapshot_delete(api: httpx.Client) -> None:
    create_disk(api, "d")
    snap = _snapshot(api, "s", "d")
    r = api.delete(f"/v1/snapshots/{snap['id']}")
    assert r.status_code == 204 and r.content == b""
    assert_error(api.get(f"/v1/snapshots/{snap['id']}"), 404, "ObjectNotFound")
    assert_error(api.delete(f"/v1/snapshots/{snap['id']}"), 404, "ObjectNotFound")


def test_slow_snapshot_is_creating_then_ready(make_sim: SimFactory) -> None:
    sim = make_sim(snapshot_create_seconds=0.2)
    with client(sim) as c:
        create_disk(c, "d")
        snap = _snapshot(c, "s", "d")
        assert snap["state"] == "creating"
        r = c.post("/v1/disks", params=P, json=snapshot_disk_body("early", str(snap["id"])))
        assert_error(r, 400, "InvalidRequest", "not ready")
        wait_for(
            lambda: c.get(f"/v1/snapshots/{snap['id']}").json()["state"] == "ready",
            "the snapshot to be ready",
        )
        r = c.post("/v1/disks", params=P, json=snapshot_disk_body("late", str(snap["id"])))
        assert r.status_code == 201


def test_snapshot_of_a_disk_in_a_transient_state_is_503(make_sim: SimFactory) -> None:
    """A disk on its way to detached (or attached) can be snapshotted soon: 503, try again."""
    sim = make_sim(disk_create_seconds=0.3)
    with client(sim) as c:
        create_disk(c, "young")
        body = {"name": "s", "description": "", "disk": "young"}
        assert_error(c.post("/v1/snapshots", params=P, json=body), 503, "ServiceNotAvailable")
        wait_for(
            lambda: c.get("/v1/disks/young", params=P).json()["state"]["state"] == "detached",
            "the disk to be ready",
        )
        assert c.post("/v1/snapshots", params=P, json=body).status_code == 201


def test_snapshot_of_a_faulted_disk_is_400(api: httpx.Client) -> None:
    d = create_disk(api, "broken")
    assert api.post(f"/sim/disks/{d['id']}/fault").status_code == 200
    body = {"name": "s", "description": "", "disk": "broken"}
    assert_error(api.post("/v1/snapshots", params=P, json=body), 400, "InvalidRequest")


def test_snapshot_fault_hook(api: httpx.Client) -> None:
    create_disk(api, "d")
    snap = _snapshot(api, "s", "d")
    assert api.post(f"/sim/snapshots/{snap['id']}/fault").json()["state"] == "faulted"
    assert api.get(f"/v1/snapshots/{snap['id']}").json()["state"] == "faulted"
