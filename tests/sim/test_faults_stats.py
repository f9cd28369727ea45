"""Fault injection (at start and at runtime) and the /sim/stats counters."""

from __future__ import annotations

import httpx
import pytest

from oxide_sim import FaultConfig
from tests.sim.conftest import SimFactory
from tests.sim.helpers import P, assert_error, client, create_disk, disk_body

NO_FAULTS = {"error_rate": 0, "rate_limit_rate": 0, "drop_rate": 0, "latency_rate": 0}


def test_faults_from_the_config(make_sim: SimFactory) -> None:
    sim = make_sim(faults=FaultConfig(error_rate=1.0, error_statuses=[503]))
    with client(sim) as c:
        for _ in range(3):
            assert_error(c.get("/v1/me"), 503, "ServiceNotAvailable")
        # the /sim hooks are never faulted
        assert c.get("/sim/stats").json()["faults_injected"] == 3
        assert c.get("/sim/faults").json()["error_rate"] == 1.0


def test_faults_set_at_runtime(api: httpx.Client) -> None:
    r = api.put("/sim/faults", json={"rate_limit_rate": 1.0})
    assert r.status_code == 200 and r.json()["rate_limit_rate"] == 1.0
    assert_error(api.get("/v1/me"), 429, "TooManyRequests")
    r = api.put(
        "/sim/faults", json={"rate_limit_rate": 0, "error_rate": 1.0, "error_statuses": [500]}
    )
    assert r.json()["error_statuses"] == [500]
    assert_error(api.get("/v1/me"), 500, "Internal")
    api.put("/sim/faults", json=NO_FAULTS)
    assert api.get("/v1/me").status_code == 200


def test_before_phase_changes_nothing_after_phase_does(api: httpx.Client) -> None:
    api.put("/sim/faults", json={"error_rate": 1.0, "error_statuses": [503], "phase": "before"})
    assert api.post("/v1/disks", params=P, json=disk_body("before")).status_code == 503
    api.put("/sim/faults", json={"phase": "after"})
    assert api.post("/v1/disks", params=P, json=disk_body("after")).status_code == 503
    api.put("/sim/faults", json=NO_FAULTS)
    assert api.get("/v1/disks/before", params=P).status_code == 404
    assert api.get("/v1/disks/after", params=P).status_code == 200


def test_dropped_connections(api: httpx.Client) -> None:
    api.put("/sim/faults", json={"drop_rate": 1.0, "phase": "after"})
    with pytest.raises(httpx.TransportError):
        api.post("/v1/disks", params=P, json=disk_body("dropped"))
    api.put("/sim/faults", json=NO_FAULTS)
    # phase "after": the disk was made although the client never heard so
    assert api.get("/v1/disks/dropped", params=P).status_code == 200


def test_latency_and_path_regex(api: httpx.Client) -> None:
    api.put("/sim/faults", json={"latency_ms": 20, "latency_rate": 1.0, "path_regex": "^/v1/me$"})
    assert api.get("/v1/me").status_code == 200
    assert api.get("/v1/disks", params=P).status_code == 200
    stats = api.get("/sim/stats").json()
    assert stats["latency_injected"] == 1


def test_seeded_faults_are_reproducible(make_sim: SimFactory) -> None:
    outcomes = []
    for _ in range(2):
        sim = make_sim(faults=FaultConfig(error_rate=0.5, seed=42))
        with client(sim) as c:
            outcomes.append([c.get("/v1/me").status_code for _ in range(30)])
    assert outcomes[0] == outcomes[1]
    assert set(outcomes[0]) > {200}


@pytest.mark.parametrize(
    "body",
    [
        {"error_rate": 2},
        {"error_rate": "half"},
        {"error_statuses": []},
        {"error_statuses": [200]},
        {"phase": "sometimes"},
        {"path_regex": "("},
        {"bogus": 1},
        [1],
    ],
)
def test_bad_fault_settings_are_400(api: httpx.Client, body: object) -> None:
    before = api.get("/sim/faults").json()
    assert api.put("/sim/faults", json=body).status_code == 400
    assert api.get("/sim/faults").json() == before


def test_stats_count_requests_by_method_and_template(api: httpx.Client) -> None:
    d = create_disk(api, "counted")
    api.get(f"/v1/disks/{d['id']}")
    api.get("/v1/disks/counted", params=P)
    api.get("/v1/disks/nope", params=P)
    api.delete(f"/v1/disks/{d['id']}")
    api.post("/v1/instances/instance-1/stop", params=P)
    stats = api.get("/sim/stats").json()
    assert stats["requests"] == {
        "POST /v1/disks": 1,
        "GET /v1/disks/{disk}": 3,
        "DELETE /v1/disks/{disk}": 1,
        "POST /v1/instances/{instance}/stop": 1,
    }
    assert stats["instances"]["instance-1"]["stops"] == 1
    assert stats["instances"]["instance-0"]["stops"] == 0
