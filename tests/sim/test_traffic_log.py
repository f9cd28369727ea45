"""The traffic log the CI conformance check reads: one JSON object per /v1 exchange, token
redacted, /sim hooks left out, dropped connections recorded without a status."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.sim.conftest import SimFactory
from tests.sim.helpers import TOKEN, P, client, create_disk


def _entries(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_entries_record_each_exchange(make_sim: SimFactory, tmp_path: Path) -> None:
    log = tmp_path / "traffic.jsonl"
    sim = make_sim(traffic_log=log)
    with client(
        sim, headers={"user-agent": "oxide-csi/test", "api-version": "2026021301.0.0"}
    ) as c:
        d = create_disk(c, "logged")
        assert c.delete(f"/v1/disks/{d['id']}").status_code == 204
        assert c.get("/v1/disks/logged", params=P).status_code == 404
        c.get("/sim/stats")
    with client(sim, token="not-the-token") as c:
        assert c.get("/v1/me").status_code == 401

    text = log.read_text()
    assert TOKEN not in text and "not-the-token" not in text
    create, delete, missing, unauth = _entries(log)
    assert create["method"] == "POST" and create["path"] == "/v1/disks"
    assert create["template"] == "/v1/disks"
    assert create["query"] == P
    assert create["request_body"]["name"] == "logged"
    assert create["request_headers"]["authorization"] == "Bearer <redacted>"
    assert create["request_headers"]["user-agent"] == "oxide-csi/test"
    assert create["request_headers"]["api-version"] == "2026021301.0.0"
    assert create["status"] == 201 and create["response_body"] == d
    assert create["response_headers"]["content-type"] == "application/json"
    assert delete["template"] == "/v1/disks/{disk}"
    assert (delete["status"], delete["response_body"]) == (204, None)
    assert "content-type" not in delete["response_headers"]
    assert missing["status"] == 404 and missing["response_body"]["error_code"] == "ObjectNotFound"
    assert unauth["status"] == 401
    assert unauth["request_headers"]["authorization"] == "Bearer <redacted>"


def test_unknown_routes_and_drops_are_logged(make_sim: SimFactory, tmp_path: Path) -> None:
    log = tmp_path / "traffic.jsonl"
    sim = make_sim(traffic_log=log)
    with client(sim) as c:
        r = c.get("/v1/nothing-here")
        assert r.status_code == 404 and "error_code" not in r.json()
        r = c.patch("/v1/me", json={})
        assert r.status_code == 405
        c.put("/sim/faults", json={"drop_rate": 1.0})
        with pytest.raises(httpx.TransportError):
            c.get("/v1/me")
    nothing, patch, dropped = _entries(log)
    assert nothing["template"] is None and nothing["status"] == 404
    assert patch["template"] == "/v1/me" and patch["status"] == 405
    assert dropped["status"] is None and dropped["response_body"] is None


def test_log_path_from_the_environment(
    make_sim: SimFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "nested" / "env.jsonl"
    monkeypatch.setenv("OXIDE_SIM_TRAFFIC_LOG", str(log))
    sim = make_sim()
    with client(sim) as c:
        c.get("/v1/me")
    assert [e["path"] for e in _entries(log)] == ["/v1/me"]
