"""Oxide ``Error`` bodies become the typed hierarchy, with code, message and request id.

Each case provokes the error from the simulator over HTTP (a real rule, or an injected fault
for statuses only a proxy or an overloaded rack gives) and checks the class and the fields
the CSI layer and an operator rely on.
"""

from __future__ import annotations

import uuid

import pytest

from oxide_csi.oxide import OxideClient, api_errors
from oxide_csi.oxide.api_errors import from_response
from tests.oxide.conftest import ClientFactory, SimFactory
from tests.oxide.simkit import GIB, Sim


def _request_id_of_last(sim: Sim) -> str:
    headers = sim.requests()[-1]["response_headers"]
    assert isinstance(headers, dict)
    request_id = headers["x-request-id"]
    assert isinstance(request_id, str)
    return request_id


async def test_not_found(sim: Sim, client: OxideClient) -> None:
    with pytest.raises(api_errors.OxideNotFound) as caught:
        await client.get_disk("no-such-disk")
    err = caught.value
    assert (err.status, err.error_code, err.attempt) == (404, "ObjectNotFound", 1)
    assert err.request_id == _request_id_of_last(sim)
    assert 'disk with name "no-such-disk"' in err.message
    assert err.message.startswith("GET /v1/disks/{disk}: ")
    assert "HTTP 404" in str(err)
    assert f"request_id={err.request_id}" in str(err)


async def test_already_exists(sim: Sim, client: OxideClient) -> None:
    await client.create_disk("dup", size=GIB)
    with pytest.raises(api_errors.OxideAlreadyExists) as caught:
        await client.create_disk("dup", size=GIB)
    assert (caught.value.status, caught.value.error_code) == (400, "ObjectAlreadyExists")
    # A first-attempt ObjectAlreadyExists is the caller's to judge: exactly one more POST.
    assert sim.hits("POST /v1/disks") == 2


async def test_invalid_value_is_invalid_request(sim: Sim, client: OxideClient) -> None:
    with pytest.raises(api_errors.OxideInvalidRequest) as caught:
        await client.create_disk("odd", size=GIB + 512)
    assert not isinstance(caught.value, api_errors.OxideAlreadyExists)
    assert (caught.value.status, caught.value.error_code) == (400, "InvalidValue")
    assert "multiple of" in caught.value.message


async def test_state_conflict(sim_factory: SimFactory, client_factory: ClientFactory) -> None:
    sim = sim_factory(stop_seconds=30.0)
    client, _ = client_factory(sim)
    await client.stop_instance("instance-0")
    # Stopping takes a while here; a start now must be refused, not resolved as done.
    with pytest.raises(api_errors.OxideConflict) as caught:
        await client.start_instance("instance-0")
    assert caught.value.status == 409
    assert "finish stopping" in caught.value.message
    assert sim.hits("POST /v1/instances/{instance}/start") == 1


async def test_insufficient_capacity_on_start(sim: Sim, client: OxideClient) -> None:
    await client.stop_instance("instance-0")
    await client.wait_instance("instance-0", {"stopped"})
    sim.start_failures("instance-0", 1)
    with pytest.raises(api_errors.OxideInsufficientCapacity) as caught:
        await client.start_instance("instance-0")
    assert (caught.value.status, caught.value.error_code) == (507, "InsufficientCapacity")
    assert sim.hits("POST /v1/instances/{instance}/start") == 1  # 507 is not retried
    assert (await client.start_instance("instance-0")).run_state in ("starting", "running")


async def test_unauthorized(sim: Sim, client_factory: ClientFactory) -> None:
    client, rec = client_factory(sim, token="not-the-token")
    with pytest.raises(api_errors.OxideUnauthorized) as caught:
        await client.get_project()
    assert caught.value.status == 401
    assert len(rec.attempts) == 1


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (403, api_errors.OxideForbidden),
        (500, api_errors.OxideServerError),
        (502, api_errors.OxideServerError),
        (503, api_errors.OxideUnavailable),
        (504, api_errors.OxideUnavailable),
        (429, api_errors.OxideRateLimited),
    ],
)
async def test_status_classes(
    sim: Sim, client_factory: ClientFactory, status: int, cls: type[api_errors.OxideError]
) -> None:
    client, rec = client_factory(sim, max_attempts=2)
    sim.faults(error_rate=1.0, error_statuses=[status])
    with pytest.raises(cls) as caught:
        await client.get_project()
    assert caught.value.status == status
    assert caught.value.request_id
    transient = status != 403
    assert len(rec.attempts) == (2 if transient else 1)
    assert caught.value.attempt == len(rec.attempts)


async def test_not_found_project_is_not_found(sim: Sim, client_factory: ClientFactory) -> None:
    client, _ = client_factory(sim, project="elsewhere")
    with pytest.raises(api_errors.OxideNotFound, match='project with name "elsewhere"'):
        await client.get_project()
    with pytest.raises(api_errors.OxideNotFound):
        [d async for d in client.list_disks()]


async def test_dropshot_error_without_code(sim: Sim, client: OxideClient) -> None:
    # A name the server cannot parse is refused by dropshot itself, without an error_code.
    with pytest.raises(api_errors.OxideInvalidRequest) as caught:
        await client.get_disk("Upper-Case")
    assert caught.value.error_code is None
    assert caught.value.request_id


def test_non_json_error_bodies_keep_a_short_excerpt() -> None:
    page = b"<html>" + b"x" * 1000 + b"</html>"
    err = from_response(502, page, {"x-request-id": "r-1"}, context="GET /v1/me")
    assert isinstance(err, api_errors.OxideServerError)
    assert err.request_id == "r-1"
    assert len(err.message) < 300
    empty = from_response(503, b"", {"retry-after": "2"}, context="GET /v1/me")
    assert isinstance(empty, api_errors.OxideUnavailable)
    assert "no error body" in empty.message
    limited = from_response(429, b"{}", {"retry-after": "1.5"}, context="GET /v1/me")
    assert isinstance(limited, api_errors.OxideRateLimited)
    assert limited.retry_after == 1.5
    dated = from_response(429, b"{}", {"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, context="x")
    assert dated.retry_after is None


def test_version_refusal_is_its_own_class() -> None:
    body = b'{"request_id": "r", "message": "server does not support this API version: 9.0.0"}'
    err = from_response(400, body, {}, context="GET /v1/me")
    assert isinstance(err, api_errors.OxideUnsupportedApiVersion)
    assert isinstance(err, api_errors.OxideInvalidRequest)


async def test_unknown_id_is_not_found(sim: Sim, client: OxideClient) -> None:
    with pytest.raises(api_errors.OxideNotFound, match="with id"):
        await client.get_instance(uuid.uuid4())
