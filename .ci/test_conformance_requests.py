"""Tests that the conformance check holds the client's requests, and routing, to the document.

Why: what the plugin's client sends is what a real rack receives, so each kind of wrong
request the check claims to catch is shown caught here, next to requests it must accept:
refused ones judged by shape only, and raw test traffic judged by path and answer only.
"""

from __future__ import annotations

from typing import Any

import pytest
from conformance import Spec
from sample_traffic import (
    BAD_REQUEST,
    CLIENT,
    CREATE_BODY,
    DISK,
    DISK_ID,
    IMAGE,
    IMAGE_ID,
    INSTANCE,
    INSTANCE_ID,
    ME,
    NOT_FOUND,
    RAW,
    changed,
    create_disk,
    entry,
    problems,
    without,
)


def test_refused_client_request_may_hold_out_of_range_values(spec: Spec) -> None:
    refused = entry(
        "GET", "/v1/disks", 400, BAD_REQUEST, query={"project": "default", "limit": "0"}
    )
    assert problems(spec, refused) == []
    bad_name = changed(CREATE_BODY, name="Not_A_Name", size=-1)
    assert problems(spec, create_disk(400, BAD_REQUEST, bad_name)) == []


def test_raw_test_traffic_is_checked_for_path_and_answer_only(spec: Spec) -> None:
    odd_request = entry(
        "POST",
        "/v1/disks",
        400,
        BAD_REQUEST,
        body={"nonsense": True},
        query={"bogus": "1"},
        headers=RAW,
    )
    assert problems(spec, odd_request) == []
    bad_answer = changed(odd_request, response_body={"message": "no request id"})
    assert problems(spec, bad_answer) == ["response body $: 'request_id' is a required property"]


def test_later_pages_take_the_project_from_the_token(spec: Spec) -> None:
    later = entry(
        "GET",
        "/v1/instances/instance-0/disks",
        200,
        {"items": [], "next_page": None},
        query={"page_token": "tok", "limit": "1"},
    )
    assert problems(spec, later) == []
    assert problems(spec, changed(later, request_headers=RAW)) == []
    first = changed(later, query={"limit": "1"})
    assert any("instance given by name without project" in p for p in problems(spec, first))


REQUEST_MISTAKES: list[tuple[str, dict[str, Any], str]] = [
    (
        "unknown body field",
        create_disk(body=CREATE_BODY | {"block_size": 4096}),
        "'block_size' was unexpected",
    ),
    (
        "unknown body field, refused",
        create_disk(400, BAD_REQUEST, CREATE_BODY | {"foo": 1}),
        "'foo' was unexpected",
    ),
    (
        "pre-v18 disk_source instead of disk_backend",
        create_disk(
            body=without(CREATE_BODY, "disk_backend")
            | {"disk_source": {"type": "blank", "block_size": 4096}}
        ),
        "'disk_backend' is a required property",
    ),
    (
        "distributed disk_backend without disk_source",
        create_disk(body=CREATE_BODY | {"disk_backend": {"type": "distributed"}}),
        "$.disk_backend: 'disk_source' is a required property",
    ),
    (
        "disk_backend of the wrong shape, refused",
        create_disk(
            400, BAD_REQUEST, CREATE_BODY | {"disk_backend": {"type": "blank", "block_size": 4096}}
        ),
        "$.disk_backend",
    ),
    (
        "snapshot source with a bad UUID",
        create_disk(
            body=CREATE_BODY
            | {
                "disk_backend": {
                    "type": "distributed",
                    "disk_source": {"type": "snapshot", "snapshot_id": "4d8f6c1a-2b3e"},
                }
            }
        ),
        "disk_source.snapshot_id: '4d8f6c1a-2b3e' is not a 'uuid'",
    ),
    (
        "attach by a malformed UUID",
        entry(
            "POST",
            f"/v1/instances/{INSTANCE_ID}/disks/attach",
            202,
            DISK,
            body={"disk": "0b5a3b0e-6f5e-4d36-8d0a-7b7c1f0e9c1"},
        ),
        "request body $.disk",
    ),
    (
        "path selector that is neither UUID nor name",
        entry("GET", "/v1/disks/0b5a3b0e-6f5e", 200, DISK, query={"project": "default"}),
        "path disk $",
    ),
    (
        "limit below its minimum",
        entry("GET", "/v1/disks", 200, {"items": []}, query={"project": "default", "limit": "0"}),
        "query limit $: 0 is less than the minimum of 1",
    ),
    (
        "limit beyond uint32",
        entry(
            "GET",
            "/v1/disks",
            200,
            {"items": []},
            query={"project": "default", "limit": str(1 << 32)},
        ),
        "query limit $",
    ),
    (
        "project that is no NameOrId",
        entry("GET", "/v1/disks", 200, {"items": []}, query={"project": "Default_Project"}),
        "query project $",
    ),
    (
        "unknown query parameter, refused",
        entry("GET", "/v1/disks", 400, BAD_REQUEST, query={"project": "default", "sort": "x"}),
        "unknown query parameter 'sort'",
    ),
    (
        "first list page without project",
        entry("GET", "/v1/disks", 200, {"items": []}),
        "first page of the list lacks query parameter 'project'",
    ),
    (
        "create without the required project",
        create_disk() | {"query": {}},
        "required query parameter 'project' missing",
    ),
    (
        "name selector without project",
        entry("GET", "/v1/disks/pvc-1", 200, DISK),
        "disk given by name without project",
    ),
    (
        "UUID selector with project",
        entry("GET", f"/v1/disks/{DISK_ID}", 200, DISK, query={"project": "default"}),
        "disk given by ID together with project",
    ),
    ("create without a body", create_disk() | {"request_body": None}, "request body missing"),
    (
        "client without api-version",
        entry(
            "GET",
            "/v1/me",
            200,
            ME,
            headers={k: v for k, v in CLIENT.items() if k != "api-version"},
        ),
        "request lacks the api-version header",
    ),
    (
        "client asking for a version newer than the document",
        entry("GET", "/v1/me", 200, ME, headers=CLIENT | {"api-version": "2099010100.0.0"}),
        "api-version 2099010100.0.0 is newer than the document's",
    ),
    (
        "client api-version that is no semver",
        entry("GET", "/v1/me", 200, ME, headers=CLIENT | {"api-version": "v18"}),
        "api-version 'v18' is not a semver version",
    ),
    (
        "body on an operation that takes none",
        entry("POST", f"/v1/instances/{INSTANCE_ID}/stop", 202, INSTANCE, body={"force": True}),
        "takes none",
    ),
]

ROUTING_MISTAKES: list[tuple[str, dict[str, Any], str]] = [
    ("unknown path", entry("GET", "/v1/disk", 200, DISK), "matches no path template"),
    (
        "path outside the API",
        entry("GET", "/v1/disks/pvc-1/extra", 404, NOT_FOUND),
        "matches no path template",
    ),
    (
        "method the path lacks",
        entry("PATCH", "/v1/disks/pvc-1", 200, DISK),
        "PATCH is not an operation of /v1/disks/{disk}",
    ),
    (
        "simulator routed to another template",
        entry(
            "GET", "/v1/disks/pvc-1", 200, DISK, query={"project": "default"}, template="/v1/disks"
        ),
        "document routes it to /v1/disks/{disk}",
    ),
    (
        "simulator accepted a raw name selector without project",
        entry("GET", "/v1/disks/pvc-1", 200, DISK, headers=RAW),
        "simulator accepted: disk given by name without project",
    ),
]


@pytest.mark.parametrize(
    ("log_entry", "expected"),
    [pytest.param(e, x, id=name) for name, e, x in REQUEST_MISTAKES],
)
def test_request_mistake_is_caught(spec: Spec, log_entry: dict[str, Any], expected: str) -> None:
    found = problems(spec, log_entry)
    assert any(expected in p for p in found), found


@pytest.mark.parametrize(
    ("log_entry", "expected"),
    [pytest.param(e, x, id=name) for name, e, x in ROUTING_MISTAKES],
)
def test_routing_mistake_is_caught(spec: Spec, log_entry: dict[str, Any], expected: str) -> None:
    found = problems(spec, log_entry)
    assert any(expected in p for p in found), found


def test_image_name_without_project_is_a_silo_image(spec: Spec) -> None:
    """A name alone selects the silo's image; an id with project is still refused."""
    assert problems(spec, entry("GET", "/v1/images/debian-12", 200, IMAGE)) == []
    by_id = entry("GET", f"/v1/images/{IMAGE_ID}", 200, IMAGE, query={"project": "default"})
    assert any("image given by ID together with project" in p for p in problems(spec, by_id))
