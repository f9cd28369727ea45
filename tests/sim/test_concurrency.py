"""Concurrent requests over real connections see one consistent store."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from oxide_sim import SimulatorServer
from tests.sim.conftest import SimFactory
from tests.sim.helpers import P, client, create_disk, disk_body, stop_instance

THREADS = 20


def _post_disk(sim: SimulatorServer, name: str) -> httpx.Response:
    with client(sim) as c:
        return c.post("/v1/disks", params=P, json=disk_body(name))


def test_same_name_created_once(sim: SimulatorServer) -> None:
    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(lambda _: _post_disk(sim, "contested"), range(THREADS)))
    statuses = sorted(r.status_code for r in results)
    assert statuses == [201] + [400] * (THREADS - 1)
    assert {r.json().get("error_code") for r in results if r.status_code == 400} == {
        "ObjectAlreadyExists"
    }
    with client(sim) as c:
        names = [d["name"] for d in c.get("/v1/disks", params=P).json()["items"]]
    assert names.count("contested") == 1


def test_different_names_all_created(sim: SimulatorServer) -> None:
    names = [f"disk-{i}" for i in range(THREADS)]
    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(lambda n: _post_disk(sim, n), names))
    assert [r.status_code for r in results] == [201] * THREADS
    assert len({r.json()["id"] for r in results}) == THREADS
    with client(sim) as c:
        listed = {d["name"] for d in c.get("/v1/disks", params=P).json()["items"]}
    assert set(names) <= listed


def test_concurrent_attaches_respect_the_slot_limit(make_sim: SimFactory) -> None:
    sim = make_sim(instances=1, max_disks_per_instance=8)
    with client(sim) as c:
        stop_instance(c)
        ids = [create_disk(c, f"vol-{i}")["id"] for i in range(10)]

    def attach(disk_id: str) -> httpx.Response:
        with client(sim) as c:
            return c.post("/v1/instances/instance-0/disks/attach", params=P, json={"disk": disk_id})

    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(attach, ids))
    ok = [r for r in results if r.status_code == 202]
    refused = [r for r in results if r.status_code == 400]
    assert (len(ok), len(refused)) == (7, 3)  # 8 slots, the boot disk holds one
    assert all("cannot attach more than 8 disks" in r.json()["message"] for r in refused)
    with client(sim) as c:
        attached = c.get("/v1/instances/instance-0/disks", params=P).json()["items"]
    assert len(attached) == 8
