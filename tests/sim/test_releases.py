"""The simulator plays each Oxide release: version rules, DiskCreate shape, views, slots.

Raw HTTP, like every simulator test: these pin what a rack of each generation does on the wire
(release notes in ../shared/oxide-api/SOURCE.md); the conformance check then holds the recorded
traffic against that release's own document.
"""

from __future__ import annotations

from typing import Any

import pytest

from oxide_sim.releases import downgrade, parse_release, release
from tests.sim.conftest import SimFactory
from tests.sim.helpers import GIB, P, assert_error, client, disk_body, stop_instance


def _v17_body(name: str, **source: Any) -> dict[str, Any]:
    return {
        "name": name,
        "description": "",
        "size": GIB,
        "disk_source": source or {"type": "blank", "block_size": 4096},
    }


@pytest.mark.parametrize("number", [15, 16, 17])
def test_unversioned_release(make_sim: SimFactory, number: int) -> None:
    sim = make_sim(release=number, instances=1)
    with client(sim) as c:
        # the api-version header is ignored, however new or malformed
        for version in ("9999999999.0.0", "RIP"):
            assert c.get("/v1/me", headers={"api-version": version}).status_code == 200
        me = c.get("/v1/me").json()
        assert "time_created" not in me
        assert ("silo_admin" in me) is (number >= 17)
        r = c.post("/v1/disks", params=P, json=disk_body("new-shape"))
        assert_error(r, 400, None, "missing field `disk_source`")
        made = c.post("/v1/disks", params=P, json=_v17_body("old-shape"))
        assert made.status_code == 201, made.text
        assert "disk_type" not in made.json() and "read_only" not in made.json()
        listed = c.get("/v1/disks", params=P).json()["items"]
        assert all("disk_type" not in d for d in listed)
        inst = c.get("/v1/instances/instance-0", params=P).json()
        assert "enable_jumbo_frames" not in inst
        assert ("cpu_platform" in inst) is (number >= 17)


@pytest.mark.parametrize(("number", "newest"), [(18, "2026021301.0.0"), (22, "2026073100.0.0")])
def test_versioned_release(make_sim: SimFactory, number: int, newest: str) -> None:
    sim = make_sim(release=number)
    with client(sim) as c:
        assert c.get("/v1/me", headers={"api-version": newest}).status_code == 200
        r = c.get("/v1/me", headers={"api-version": newest.replace(".0.0", ".0.1")})
        assert_error(r, 400, None, "server does not support this API version")
        r = c.post("/v1/disks", params=P, json=_v17_body("old-shape"))
        assert_error(r, 400, None, "missing field `disk_backend`")
        made = c.post("/v1/disks", params=P, json=disk_body("new-shape")).json()
        assert made["disk_type"] == "distributed" and made["read_only"] is False


@pytest.mark.parametrize(("number", "slots"), [(17, 8), (18, 12)])
def test_slots_follow_the_release(make_sim: SimFactory, number: int, slots: int) -> None:
    sim = make_sim(release=number, instances=1)
    body = _v17_body if number < 18 else (lambda name: disk_body(name))
    with client(sim) as c:
        stop_instance(c)
        for i in range(slots):
            assert c.post("/v1/disks", params=P, json=body(f"vol-{i}")).status_code == 201
        attach = "/v1/instances/instance-0/disks/attach"
        for i in range(slots - 1):
            assert c.post(attach, params=P, json={"disk": f"vol-{i}"}).status_code == 202
        r = c.post(attach, params=P, json={"disk": f"vol-{slots - 1}"})
        assert_error(r, 400, "InvalidRequest", f"cannot attach more than {slots} disks")


def test_release_parsing() -> None:
    assert parse_release("v17") == release(17) and parse_release("22").number == 22
    assert release(17).max_disks == 8 and release(18).max_disks == 12
    assert release(17).api_version is None and release(18).api_version == "2026021301.0.0"
    for bad in ("v14", "v23", "seventeen"):
        with pytest.raises(ValueError):
            parse_release(bad)


def test_downgrade_leaves_errors_and_other_routes_alone() -> None:
    v17 = release(17)
    error = {"request_id": "r", "message": "m"}
    assert downgrade(v17, "/v1/disks/{disk}", error) == error
    snap = {"id": "x", "disk_type": "kept"}  # not a view that changed shape
    assert downgrade(v17, "/v1/snapshots/{snapshot}", snap) == snap


def test_cli_rejects_an_unknown_release(capsys: pytest.CaptureFixture[str]) -> None:
    from oxide_sim.cli import main

    with pytest.raises(SystemExit):
        main(["--token", "t", "--release", "v9"])
    assert "between v15 and v22" in capsys.readouterr().err
