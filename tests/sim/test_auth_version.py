"""Authentication and the ``api-version`` header, answered as Nexus answers them.

Nexus (omicron PR 9430, dropshot ``ClientSpecifiesVersionInHeader::on_missing``): a request
without ``api-version`` is served at the newest version; a header that is no semver or names a
version newer than the server's is a 400 whose body has no ``error_code``. The version is
checked before routing and authentication, as dropshot does.
"""

from __future__ import annotations

import httpx
import pytest

from oxide_sim import SimulatorServer
from tests.sim.conftest import SimFactory
from tests.sim.helpers import TOKEN, P, assert_error, client

ENDPOINTS = [
    ("GET", "/v1/me", None),
    ("GET", "/v1/disks", None),
    ("POST", "/v1/disks", {"name": "x"}),
    ("GET", "/v1/instances/instance-0", None),
    ("POST", "/v1/instances/instance-0/stop", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_missing_token_is_401(sim: SimulatorServer, method: str, path: str, body: object) -> None:
    with client(sim, token=None) as c:
        r = c.request(method, path, params=P, json=body)
    assert_error(r, 401, "Unauthorized", "credentials missing or invalid")


@pytest.mark.parametrize(
    "header", ["Bearer wrong-token", "Bearer", "Basic dXNlcjpwYXNz", "sim-test-token"]
)
def test_wrong_token_is_401_and_changes_nothing(sim: SimulatorServer, header: str) -> None:
    with client(sim, token=None, headers={"authorization": header}) as c:
        r = c.post("/v1/instances/instance-0/stop", params=P)
    assert_error(r, 401, "Unauthorized")
    with client(sim) as c:
        assert c.get("/v1/instances/instance-0", params=P).json()["run_state"] == "running"


def test_right_token_any_scheme_case(sim: SimulatorServer) -> None:
    with client(sim, token=None, headers={"authorization": f"bearer {TOKEN}"}) as c:
        assert c.get("/v1/me").status_code == 200


def test_me_shape(api: httpx.Client) -> None:
    me = api.get("/v1/me").json()
    assert {"id", "display_name", "silo_id", "silo_name"} <= set(me)


@pytest.mark.parametrize("version", ["2026021301.0.0", "2026072800.0.0", "1.0.0"])
def test_supported_versions_are_accepted(api: httpx.Client, version: str) -> None:
    r = api.get("/v1/me", headers={"api-version": version})
    assert r.status_code == 200, r.text


def test_missing_version_header_is_served_as_newest(api: httpx.Client) -> None:
    assert "api-version" not in api.headers
    assert api.get("/v1/me").status_code == 200


def test_newer_version_is_refused(api: httpx.Client) -> None:
    # v22 (the default release) serves up to 2026073100.0.0
    assert api.get("/v1/me", headers={"api-version": "2026073100.0.0"}).status_code == 200
    r = api.get("/v1/me", headers={"api-version": "2026073100.0.1"})
    assert_error(r, 400, None, "server does not support this API version: 2026073100.0.1")


def test_max_api_version_is_configurable(make_sim: SimFactory) -> None:
    sim = make_sim(max_api_version="2026021301.0.0")
    with client(sim) as c:
        assert c.get("/v1/me", headers={"api-version": "2026021301.0.0"}).status_code == 200
        r = c.get("/v1/me", headers={"api-version": "2026021302.0.0"})
        assert_error(r, 400, None, "server does not support this API version")


@pytest.mark.parametrize("version", ["", "RIP", "2026021301", "1.0.x"])
def test_malformed_version_is_400(api: httpx.Client, version: str) -> None:
    r = api.get("/v1/me", headers={"api-version": version})
    assert_error(r, 400, None, 'bad value for header "api-version"')


def test_version_is_checked_before_authentication(sim: SimulatorServer) -> None:
    with client(sim, token=None) as c:
        r = c.get("/v1/me", headers={"api-version": "9999999999.0.0"})
    assert_error(r, 400, None, "server does not support this API version")
