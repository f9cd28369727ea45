"""Tests that the conformance check holds simulator answers to the document.

Why: the client is written against what the simulator answers, so each kind of wrong answer
the check claims to catch is shown caught here, next to correct answers it must accept (a
check that refuses everything would be as useless as one that passes everything).
"""

from __future__ import annotations

from typing import Any

import pytest
from conformance import Spec
from sample_traffic import (
    DISK,
    DISK_ID,
    INSTANCE,
    NOT_FOUND,
    changed,
    create_disk,
    entry,
    problems,
    without,
)


def test_not_found_error_body_is_accepted(spec: Spec) -> None:
    assert (
        problems(
            spec, entry("GET", "/v1/disks/pvc-9", 404, NOT_FOUND, query={"project": "default"})
        )
        == []
    )


def test_null_for_nullable_ref_fields_is_accepted_but_a_bad_value_is_not(spec: Spec) -> None:
    ok = entry("GET", "/v1/instances/instance-0", 200, INSTANCE, query={"project": "default"})
    assert problems(spec, ok) == []
    bad = changed(ok, response_body=changed(INSTANCE, auto_restart_policy="sometimes"))
    assert any("$.auto_restart_policy" in p for p in problems(spec, bad))


RESPONSE_MISTAKES: list[tuple[str, dict[str, Any], str]] = [
    (
        "disk missing a required field",
        create_disk(response=without(DISK, "device_path")),
        "'device_path' is a required property",
    ),
    (
        "disk state not in the enum",
        create_disk(response=changed(DISK, state={"state": "ready"})),
        "$.state",
    ),
    (
        "attached disk state without instance",
        create_disk(response=changed(DISK, state={"state": "attached"})),
        "$.state: 'instance' is a required property",
    ),
    (
        "disk state as a bare string",
        create_disk(response=changed(DISK, state="detached")),
        "$.state",
    ),
    (
        "field the API does not have",
        create_disk(response=changed(DISK, attached_to=None)),
        "'attached_to' was unexpected",
    ),
    (
        "id that is no UUID",
        create_disk(response=changed(DISK, id="0b5a3b0e-6f5e-4d36-8d0a")),
        "$.id: '0b5a3b0e-6f5e-4d36-8d0a' is not a 'uuid'",
    ),
    (
        "timestamp that is no RFC 3339 date-time",
        create_disk(response=changed(DISK, time_created="2026-08-01 12:00")),
        "$.time_created: '2026-08-01 12:00' is not a 'date-time'",
    ),
    ("size as a string", create_disk(response=changed(DISK, size="1073741824")), "$.size"),
    ("undeclared success status", create_disk(status=200), "status 200 not declared"),
    (
        "error body without request_id",
        entry("GET", "/v1/disks/pvc-9", 404, {"message": "gone"}, query={"project": "default"}),
        "'request_id' is a required property",
    ),
    (
        "body on a 204",
        entry("DELETE", "/v1/disks/pvc-1", 204, {}, query={"project": "default"}),
        "status 204 has no body",
    ),
    (
        "JSON body without a JSON content-type",
        create_disk() | {"response_headers": {}},
        "content-type None is not application/json",
    ),
    (
        "list page item that is no Disk",
        entry("GET", "/v1/disks", 200, {"items": [{"id": DISK_ID}]}, query={"project": "default"}),
        "$.items[0]: 'name' is a required property",
    ),
    ("success without a body", entry("GET", "/v1/me", 200, None), "must carry a JSON body"),
]


@pytest.mark.parametrize(
    ("log_entry", "expected"),
    [pytest.param(e, x, id=name) for name, e, x in RESPONSE_MISTAKES],
)
def test_response_mistake_is_caught(spec: Spec, log_entry: dict[str, Any], expected: str) -> None:
    found = problems(spec, log_entry)
    assert any(expected in p for p in found), found
