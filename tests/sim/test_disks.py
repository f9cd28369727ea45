"""Disk creation rules, lookups, selectors and deletion, as Nexus applies them."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.sim.conftest import SimFactory
from tests.sim.helpers import GIB, P, assert_error, client, create_disk, disk_body, wait_for

DISK_FIELDS = {
    "id",
    "name",
    "description",
    "project_id",
    "size",
    "block_size",
    "device_path",
    "disk_type",
    "image_id",
    "snapshot_id",
    "read_only",
    "state",
    "time_created",
    "time_modified",
}


def test_create_answers_201_with_a_creating_disk(api: httpx.Client) -> None:
    """Nexus answers with the record its create saga began with: ``creating``, however fast
    the disk is ready (here at once: a GET right after shows it ``detached``)."""
    r = api.post("/v1/disks", params=P, json=disk_body("pvc-1", size=3 * GIB, block_size=512))
    assert r.status_code == 201, r.text
    d = r.json()
    assert set(d) == DISK_FIELDS
    assert (d["name"], d["size"], d["block_size"]) == ("pvc-1", 3 * GIB, 512)
    assert d["state"] == {"state": "creating"}
    assert d["snapshot_id"] is None and d["read_only"] is False
    assert str(uuid.UUID(d["id"])) == d["id"]
    project = api.get(f"/v1/projects/{P['project']}").json()
    assert d["project_id"] == project["id"]
    detached = {**d, "state": {"state": "detached"}}
    assert api.get(f"/v1/disks/{d['id']}").json() == detached
    assert api.get("/v1/disks/pvc-1", params=P).json() == detached


def test_create_goes_through_creating_when_slow(make_sim: SimFactory) -> None:
    sim = make_sim(disk_create_seconds=0.2)
    with client(sim) as c:
        d = create_disk(c, "slow")
        assert d["state"] == {"state": "creating"}
        wait_for(
            lambda: c.get(f"/v1/disks/{d['id']}").json()["state"] == {"state": "detached"},
            "the disk to leave creating",
        )


@pytest.mark.parametrize("block_size", [512, 2048, 4096])
def test_block_sizes_accepted(api: httpx.Client, block_size: int) -> None:
    assert create_disk(api, f"bs-{block_size}", block_size=block_size)["block_size"] == block_size


@pytest.mark.parametrize("block_size", [0, 1024, 8192, "4096", True])
def test_other_block_sizes_refused_by_deserialization(
    api: httpx.Client, block_size: object
) -> None:
    r = api.post("/v1/disks", params=P, json=disk_body("bad-bs", block_size=block_size))  # type: ignore[arg-type]
    assert_error(r, 400, None, "unable to parse JSON body")


@pytest.mark.parametrize("size", [GIB, 2 * GIB, 1023 * GIB])
def test_sizes_accepted(api: httpx.Client, size: int) -> None:
    assert create_disk(api, f"size-{size // GIB}", size=size)["size"] == size


@pytest.mark.parametrize(
    ("size", "fragment"),
    [
        (GIB + 512, "multiple of block size 4096"),
        (GIB // 2, "at least 1 GiB"),
        (GIB + 4096, "multiple of 1 GiB"),
        (1024 * GIB, "less than 1023 GiB"),
    ],
)
def test_sizes_refused(api: httpx.Client, size: int, fragment: str) -> None:
    r = api.post("/v1/disks", params=P, json=disk_body("bad-size", size=size))
    assert_error(r, 400, "InvalidValue", fragment)


@pytest.mark.parametrize("size", [-1, "1073741824", 1.5, None])
def test_size_of_the_wrong_type_refused(api: httpx.Client, size: object) -> None:
    r = api.post("/v1/disks", params=P, json=disk_body("bad-size", size=size))  # type: ignore[arg-type]
    assert_error(r, 400, None, "unable to parse JSON body")


@pytest.mark.parametrize(
    "name",
    ["", "Upper", "1disk", "-disk", "disk-", "disk_1", "disk.1", "a" * 64, str(uuid.uuid4()), 7],
)
def test_invalid_names_refused(api: httpx.Client, name: object) -> None:
    body = disk_body("x")
    body["name"] = name
    r = api.post("/v1/disks", params=P, json=body)
    assert_error(r, 400, None, "unable to parse JSON body")
    assert api.get("/v1/disks", params=P).json()["items"][-1]["name"] != name


@pytest.mark.parametrize("name", ["a", "a" * 63, "pvc-0b5a3b0e-6f5e-4d36", "x-1-y"])
def test_valid_names_accepted(api: httpx.Client, name: str) -> None:
    assert create_disk(api, name)["name"] == name


def test_duplicate_name_in_project_is_object_already_exists(api: httpx.Client) -> None:
    first = create_disk(api, "dup")
    r = api.post("/v1/disks", params=P, json=disk_body("dup", size=2 * GIB))
    assert_error(r, 400, "ObjectAlreadyExists", 'already exists: disk "dup"')
    assert api.get("/v1/disks/dup", params=P).json()["id"] == first["id"]
    # the boot disks hold names too
    r = api.post("/v1/disks", params=P, json=disk_body("instance-0-boot"))
    assert_error(r, 400, "ObjectAlreadyExists")


def test_name_is_free_again_after_delete(api: httpx.Client) -> None:
    first = create_disk(api, "again")
    assert api.delete(f"/v1/disks/{first['id']}").status_code == 204
    assert create_disk(api, "again")["id"] != first["id"]


def test_body_shape_errors(api: httpx.Client) -> None:
    r = api.post("/v1/disks", params=P, json={"name": "x", "description": ""})
    assert_error(r, 400, None, "missing field")
    r = api.post(
        "/v1/disks", params=P, content=b"{not json", headers={"content-type": "application/json"}
    )
    assert_error(r, 400, None, "unable to parse JSON body")
    body = disk_body("x")
    body["disk_backend"] = {"type": "distributed", "disk_source": {"type": "floppy"}}
    assert_error(api.post("/v1/disks", params=P, json=body), 400, None, "unknown variant")


def test_create_needs_a_known_project(api: httpx.Client) -> None:
    assert_error(api.post("/v1/disks", json=disk_body("x")), 400, None, "project")
    r = api.post("/v1/disks", params={"project": "nope"}, json=disk_body("x"))
    assert_error(r, 404, "ObjectNotFound", 'project with name "nope"')


def test_unknown_names_and_ids_are_404(api: httpx.Client) -> None:
    missing = str(uuid.uuid4())
    assert_error(
        api.get("/v1/disks/nope", params=P), 404, "ObjectNotFound", 'disk with name "nope"'
    )
    assert_error(
        api.get(f"/v1/disks/{missing}"), 404, "ObjectNotFound", f'disk with id "{missing}"'
    )
    assert_error(api.delete(f"/v1/disks/{missing}"), 404, "ObjectNotFound")
    assert_error(api.get("/v1/instances/nope", params=P), 404, "ObjectNotFound", "instance")
    assert_error(api.get(f"/v1/snapshots/{missing}"), 404, "ObjectNotFound", "snapshot")
    assert_error(api.get("/v1/projects/nope"), 404, "ObjectNotFound", "project")
    assert_error(api.get("/v1/disks", params={"project": "nope"}), 404, "ObjectNotFound")


def test_selector_rules(api: httpx.Client) -> None:
    d = create_disk(api, "sel")
    r = api.get("/v1/disks/sel")
    assert_error(
        r, 400, "InvalidRequest", "disk should either be UUID or project should be specified"
    )
    r = api.get(f"/v1/disks/{d['id']}", params=P)
    assert_error(
        r, 400, "InvalidRequest", "when providing disk as an ID project should not be specified"
    )
    inst = api.get("/v1/instances/instance-0", params=P).json()
    assert_error(api.post("/v1/instances/instance-0/stop"), 400, "InvalidRequest")
    assert_error(api.post(f"/v1/instances/{inst['id']}/stop", params=P), 400, "InvalidRequest")
    assert api.get(f"/v1/instances/{inst['id']}").json()["run_state"] == "running"
    # a path segment that is neither a UUID nor a Name
    assert_error(api.get("/v1/disks/Bad_Name", params=P), 400, None)


def test_delete_only_when_detached(api: httpx.Client) -> None:
    boot = api.get("/v1/disks/instance-0-boot", params=P).json()
    r = api.delete(f"/v1/disks/{boot['id']}")
    assert_error(r, 400, "InvalidRequest", 'disk cannot be deleted in state "attached"')
    d = create_disk(api, "gone")
    r = api.delete("/v1/disks/gone", params=P)
    assert r.status_code == 204 and r.content == b""
    assert_error(api.get(f"/v1/disks/{d['id']}"), 404, "ObjectNotFound")


def test_faulted_disk_can_be_deleted(api: httpx.Client) -> None:
    d = create_disk(api, "broken")
    r = api.post(f"/sim/disks/{d['id']}/fault")
    assert r.status_code == 200 and r.json()["state"] == {"state": "faulted"}
    assert api.get(f"/v1/disks/{d['id']}").json()["state"] == {"state": "faulted"}
    assert api.delete(f"/v1/disks/{d['id']}").status_code == 204


def test_capacity_exhausted_is_507(make_sim: SimFactory) -> None:
    sim = make_sim(instances=0, storage_capacity=3 * GIB)
    with client(sim) as c:
        create_disk(c, "fits", size=2 * GIB)
        r = c.post("/v1/disks", params=P, json=disk_body("too-big", size=2 * GIB))
        assert_error(r, 507, "InsufficientCapacity")
        util = c.get("/v1/utilization").json()
        assert util["provisioned"]["storage"] == 2 * GIB
        assert util["capacity"]["storage"] == 3 * GIB
