"""Images, read-only and local disks, and utilization in the simulated Oxide.

Images carry their snapshot's blocks (with backing files), a read-only disk has its source's
size, a local disk cannot be snapshotted, and the silo's provisioned storage follows disks as
they come and go.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from tests.sim.conftest import SimFactory
from tests.sim.helpers import GIB, P, assert_error, client, create_disk, disk_body


def _snapshot(c: httpx.Client, disk_id: str, name: str) -> dict[str, Any]:
    r = c.post("/v1/snapshots", params=P, json={"name": name, "description": "", "disk": disk_id})
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def _image_body(name: str, snapshot_id: str) -> dict[str, Any]:
    return {
        "name": name,
        "description": "",
        "os": "linux",
        "version": "1",
        "source": {"type": "snapshot", "id": snapshot_id},
    }


def _from(kind: str, source_id: str, name: str, size: int = GIB, **extra: Any) -> dict[str, Any]:
    source = {"type": kind, f"{kind}_id": source_id, **extra}
    body = disk_body(name, size)
    body["disk_backend"] = {"type": "distributed", "disk_source": source}
    return body


def test_images_from_snapshots_carry_the_data(make_sim: SimFactory, tmp_path: Path) -> None:
    sim = make_sim(disk_data_dir=tmp_path / "data")
    with client(sim) as c:
        disk = create_disk(c, "origin")
        with open(tmp_path / "data" / f"{disk['id']}.img", "r+b") as fh:
            fh.seek(5 * 4096)
            fh.write(b"written before the snapshot")
        snap = _snapshot(c, disk["id"], "origin-snap")
        made = c.post("/v1/images", params=P, json=_image_body("golden", snap["id"]))
        assert made.status_code == 201, made.text
        image = made.json()
        assert (image["size"], image["block_size"]) == (GIB, 4096)
        assert image["project_id"] == disk["project_id"]
        # by name in the project, by id alone; a name alone looks among the silo's images
        assert c.get("/v1/images/golden", params=P).json()["id"] == image["id"]
        assert c.get(f"/v1/images/{image['id']}").json()["name"] == "golden"
        assert_error(c.get("/v1/images/golden"), 404, "ObjectNotFound", "image")
        silo = c.post("/v1/images", json=_image_body("silo-wide", snap["id"])).json()
        assert silo["project_id"] is None
        assert [i["name"] for i in c.get("/v1/images").json()["items"]] == ["silo-wide"]
        assert [i["name"] for i in c.get("/v1/images", params=P).json()["items"]] == ["golden"]
        copy = c.post("/v1/disks", params=P, json=_from("image", image["id"], "copy", 2 * GIB))
        assert copy.status_code == 201, copy.text
        assert copy.json()["image_id"] == image["id"]
        with open(tmp_path / "data" / f"{copy.json()['id']}.img", "rb") as fh:
            fh.seek(5 * 4096)
            assert fh.read(27) == b"written before the snapshot"
        small = _from("image", image["id"], "small", GIB // 2)
        assert c.post("/v1/disks", params=P, json=small).status_code == 400
        assert c.delete("/v1/images/golden", params=P).status_code == 204
        assert not (tmp_path / "data" / "images" / f"{image['id']}.img").exists()
        assert_error(c.get(f"/v1/images/{image['id']}"), 404, "ObjectNotFound", "image")


def test_read_only_disks_have_their_sources_size(make_sim: SimFactory) -> None:
    sim = make_sim()
    with client(sim) as c:
        snap = _snapshot(c, create_disk(c, "ro-src")["id"], "ro-snap")
        bigger = _from("snapshot", snap["id"], "ro-big", 2 * GIB, read_only=True)
        assert_error(c.post("/v1/disks", params=P, json=bigger), 400, "InvalidValue", "read-only")
        same = c.post("/v1/disks", params=P, json=_from("snapshot", snap["id"], "ro", GIB,
                                                          read_only=True))  # fmt: skip
        assert same.status_code == 201 and same.json()["read_only"] is True


def test_local_disks_cannot_be_snapshotted(make_sim: SimFactory) -> None:
    sim = make_sim()
    with client(sim) as c:
        body = disk_body("nvme")
        body["disk_backend"] = {"type": "local"}
        made = c.post("/v1/disks", params=P, json=body).json()
        assert (made["disk_type"], made["block_size"], made["read_only"]) == ("local", 4096, False)
        r = c.post("/v1/snapshots", params=P, json={"name": "s", "description": "", "disk": "nvme"})
        assert_error(r, 400, "InvalidRequest", "local disk")


def test_utilization_follows_disks(make_sim: SimFactory) -> None:
    sim = make_sim()
    with client(sim) as c:

        def provisioned() -> int:
            value: int = c.get("/v1/utilization").json()["provisioned"]["storage"]
            return value

        start = provisioned()
        disk = create_disk(c, "counted", size=3 * GIB)
        assert provisioned() == start + 3 * GIB
        assert c.delete(f"/v1/disks/{disk['id']}").status_code == 204
        assert provisioned() == start
