"""Tests of the OpenAPI conformance check with hand-written traffic log entries.

Why: CI trusts this check to catch the simulator or the client drifting from the real Oxide
API, so each kind of mistake it claims to catch is shown caught here, next to correct traffic
it must accept (a check that refuses everything would be as useless as one that passes
everything). The OpenAPI document is required: without it the check proves nothing, so a
missing document fails the tests instead of skipping them.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
DEFAULT_DOCUMENT = HERE.parent.parent / "shared" / "oxide-api" / "oxide-openapi.json"


def _load_checker() -> ModuleType:
    """Import the checker script; .ci is no package and the script is not installed."""
    spec = importlib.util.spec_from_file_location(
        "openapi_conformance", HERE / "openapi_conformance.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


oc = _load_checker()

PROJECT_ID = "5c0aa2d4-8a4b-4c31-9a5e-2a0f1e8f2a01"
DISK_ID = "0b5a3b0e-6f5e-4d36-8d0a-7b7c1f0e9c11"
INSTANCE_ID = "9e2c9a55-1f7d-4a9e-b0f3-3e1d7c2b5a21"
SNAPSHOT_ID = "4d8f6c1a-2b3e-4f5a-8c9d-0e1f2a3b4c31"
IMAGE_ID = "7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c41"
WHEN = "2026-08-01T12:00:00.123456Z"
CLIENT = {
    "user-agent": "oxide-csi/0.1.0",
    "content-type": "application/json",
    "authorization": "Bearer <redacted>",
    "api-version": "2026021301.0.0",
}
RAW = {"user-agent": "python-httpx/0.28.1", "content-type": "application/json"}
JSON_HEADERS = {"content-type": "application/json"}

DISK: dict[str, Any] = {
    "id": DISK_ID,
    "name": "pvc-1",
    "description": "",
    "project_id": PROJECT_ID,
    "time_created": WHEN,
    "time_modified": WHEN,
    "size": 1 << 30,
    "block_size": 4096,
    "state": {"state": "detached"},
    "device_path": "/mnt/pvc-1",
    "disk_type": "distributed",
    "read_only": False,
    "image_id": None,
    "snapshot_id": None,
}
INSTANCE: dict[str, Any] = {
    "id": INSTANCE_ID,
    "name": "instance-0",
    "description": "",
    "project_id": PROJECT_ID,
    "time_created": WHEN,
    "time_modified": WHEN,
    "time_run_state_updated": WHEN,
    "hostname": "instance-0",
    "memory": 1 << 32,
    "ncpus": 2,
    "run_state": "running",
    "auto_restart_enabled": True,
    "auto_restart_policy": None,
    "auto_restart_cooldown_expiration": None,
    "time_last_auto_restarted": None,
    "boot_disk_id": None,
    "cpu_platform": None,
    "enable_jumbo_frames": False,
}
SNAPSHOT: dict[str, Any] = {
    "id": SNAPSHOT_ID,
    "name": "snap-1",
    "description": "",
    "project_id": PROJECT_ID,
    "time_created": WHEN,
    "time_modified": WHEN,
    "disk_id": DISK_ID,
    "size": 1 << 30,
    "state": "ready",
}
IMAGE: dict[str, Any] = {
    "id": IMAGE_ID,
    "name": "debian-12",
    "description": "",
    "project_id": None,
    "time_created": WHEN,
    "time_modified": WHEN,
    "block_size": 512,
    "size": 1 << 30,
    "os": "debian",
    "version": "12",
    "digest": {"type": "sha256", "value": "ab" * 32},
}
PROJECT: dict[str, Any] = {
    "id": PROJECT_ID,
    "name": "default",
    "description": "",
    "time_created": WHEN,
    "time_modified": WHEN,
}
ME: dict[str, Any] = {
    "id": "1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f1",
    "display_name": "csi",
    "silo_id": "2e3d4c5b-6a79-4887-9695-b4c3d2e1f0a1",
    "silo_name": "default",
    "fleet_viewer": False,
    "silo_admin": False,
    "time_created": WHEN,
    "time_modified": WHEN,
}
NOT_FOUND = {
    "request_id": "req-7",
    "error_code": "ObjectNotFound",
    "message": 'not found: disk with name "pvc-9"',
}
BAD_REQUEST = {"request_id": "req-8", "error_code": "InvalidRequest", "message": "bad value"}
CREATE_BODY: dict[str, Any] = {
    "name": "pvc-1",
    "description": "",
    "size": 1 << 30,
    "disk_backend": {"type": "distributed", "disk_source": {"type": "blank", "block_size": 4096}},
}


def document_path() -> Path:
    return Path(os.environ.get("OXIDE_OPENAPI", str(DEFAULT_DOCUMENT)))


@pytest.fixture(scope="module")
def spec() -> Any:
    path = document_path()
    if not path.is_file():
        pytest.fail(f"the Oxide OpenAPI document is missing at {path} (set OXIDE_OPENAPI)")
    return oc.Spec.load(path)


def test_openapi_document_is_present() -> None:
    assert document_path().is_file(), f"no Oxide OpenAPI document at {document_path()}"


def entry(
    method: str,
    path: str,
    status: int | None,
    response: Any = None,
    *,
    query: dict[str, Any] | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
    template: str | None = None,
    response_headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A log entry as the simulator writes it; by default a client request with JSON answer."""
    return {
        "method": method,
        "path": path,
        "template": template,
        "query": query or {},
        "request_headers": CLIENT if headers is None else headers,
        "request_body": body,
        "status": status,
        "response_body": response,
        "response_headers": JSON_HEADERS if response_headers is None else response_headers,
    }


def create_disk(status: int = 201, response: Any = None, body: Any = None) -> dict[str, Any]:
    return entry(
        "POST",
        "/v1/disks",
        status,
        DISK if response is None else response,
        query={"project": "default"},
        body=CREATE_BODY if body is None else body,
    )


def problems(spec: Any, log_entry: dict[str, Any]) -> list[str]:
    found, _ = oc.check_entry(spec, log_entry)
    return list(found)


def changed(base: dict[str, Any], **fields: Any) -> dict[str, Any]:
    result = copy.deepcopy(base)
    result.update(fields)
    return result


def without(base: dict[str, Any], name: str) -> dict[str, Any]:
    return {k: v for k, v in base.items() if k != name}


def the_whole_plugin_session() -> list[dict[str, Any]]:
    """Correct traffic for every operation --require-endpoints asks for."""
    proj = {"project": "default"}
    attached = changed(DISK, state={"state": "attached", "instance": INSTANCE_ID})
    by_id = f"/v1/disks/{DISK_ID}"
    return [
        entry("GET", "/v1/me", 200, ME),
        entry("GET", "/v1/projects/default", 200, PROJECT),
        entry(
            "GET",
            "/v1/disks",
            200,
            {"items": [DISK], "next_page": "tok"},
            query={"project": "default", "limit": "100"},
        ),
        entry(
            "GET",
            "/v1/disks",
            200,
            {"items": [], "next_page": None},
            query={"page_token": "tok", "limit": "100"},
        ),
        create_disk(),
        entry("GET", "/v1/disks/pvc-1", 200, DISK, query=proj),
        entry("GET", by_id, 200, DISK),
        entry("GET", "/v1/snapshots", 200, {"items": [SNAPSHOT]}, query=proj),
        entry(
            "POST",
            "/v1/snapshots",
            201,
            changed(SNAPSHOT, state="creating"),
            query=proj,
            body={"name": "snap-1", "description": "", "disk": DISK_ID},
        ),
        entry("GET", f"/v1/snapshots/{SNAPSHOT_ID}", 200, SNAPSHOT),
        entry("DELETE", "/v1/snapshots/snap-1", 204, None, query=proj, response_headers={}),
        entry("GET", "/v1/instances", 200, {"items": [INSTANCE], "next_page": None}, query=proj),
        entry("GET", "/v1/instances/instance-0", 200, INSTANCE, query=proj),
        entry(
            "POST",
            f"/v1/instances/{INSTANCE_ID}/stop",
            202,
            changed(INSTANCE, run_state="stopping"),
        ),
        entry(
            "POST",
            f"/v1/instances/{INSTANCE_ID}/start",
            202,
            changed(
                INSTANCE,
                run_state="starting",
                auto_restart_policy="best_effort",
                cpu_platform="amd_milan",
                boot_disk_id=DISK_ID,
            ),
        ),
        entry("GET", f"/v1/instances/{INSTANCE_ID}/disks", 200, {"items": [attached]}),
        entry(
            "POST",
            f"/v1/instances/{INSTANCE_ID}/disks/attach",
            202,
            changed(DISK, state={"state": "attaching", "instance": INSTANCE_ID}),
            body={"disk": DISK_ID},
        ),
        entry(
            "POST",
            "/v1/instances/instance-0/disks/detach",
            202,
            changed(DISK, state={"state": "detaching", "instance": INSTANCE_ID}),
            query=proj,
            body={"disk": "pvc-1"},
        ),
        entry("GET", "/v1/images", 200, {"items": [IMAGE], "next_page": None}),
        entry("DELETE", by_id, 204, None, response_headers={}),
    ]


# ---- correct traffic is accepted ------------------------------------------------------------


def test_every_operation_of_a_correct_session_passes(spec: Any) -> None:
    for log_entry in the_whole_plugin_session():
        assert problems(spec, log_entry) == [], log_entry


def test_require_endpoints_passes_on_full_coverage(spec: Any) -> None:
    lines = [json.dumps(e) for e in the_whole_plugin_session()]
    report = oc.check_log(spec, lines, require_endpoints=True)
    assert report.ok, report.lines
    assert report.lines[-1] == f"{len(lines)} passed, 0 failed"


def test_not_found_error_body_is_accepted(spec: Any) -> None:
    assert (
        problems(
            spec, entry("GET", "/v1/disks/pvc-9", 404, NOT_FOUND, query={"project": "default"})
        )
        == []
    )


def test_null_for_nullable_ref_fields_is_accepted_but_a_bad_value_is_not(spec: Any) -> None:
    ok = entry("GET", "/v1/instances/instance-0", 200, INSTANCE, query={"project": "default"})
    assert problems(spec, ok) == []
    bad = changed(ok, response_body=changed(INSTANCE, auto_restart_policy="sometimes"))
    assert any("$.auto_restart_policy" in p for p in problems(spec, bad))


def test_refused_client_request_may_hold_out_of_range_values(spec: Any) -> None:
    refused = entry(
        "GET", "/v1/disks", 400, BAD_REQUEST, query={"project": "default", "limit": "0"}
    )
    assert problems(spec, refused) == []
    bad_name = changed(CREATE_BODY, name="Not_A_Name", size=-1)
    assert problems(spec, create_disk(400, BAD_REQUEST, bad_name)) == []


def test_raw_test_traffic_is_checked_for_path_and_answer_only(spec: Any) -> None:
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


# ---- mistakes are caught --------------------------------------------------------------------

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
    [
        pytest.param(e, x, id=name)
        for name, e, x in RESPONSE_MISTAKES + REQUEST_MISTAKES + ROUTING_MISTAKES
    ],
)
def test_mistake_is_caught(spec: Any, log_entry: dict[str, Any], expected: str) -> None:
    found = problems(spec, log_entry)
    assert any(expected in p for p in found), found


# ---- the log as a whole and the command line ------------------------------------------------


def test_missing_coverage_is_named(spec: Any) -> None:
    session = [e for e in the_whole_plugin_session() if e["path"] != "/v1/images"]
    report = oc.check_log(spec, [json.dumps(e) for e in session], require_endpoints=True)
    assert not report.ok
    assert report.missing == ["GET /v1/images"]
    assert report.lines[-1] == f"{len(session)} passed, 0 failed"
    # Without the flag the same log is fine.
    assert oc.check_log(spec, [json.dumps(e) for e in session]).ok


def test_refused_requests_do_not_count_as_coverage(spec: Any) -> None:
    lines = [json.dumps(entry("GET", "/v1/me", 401, BAD_REQUEST))]
    report = oc.check_log(spec, lines, require_endpoints=True)
    assert report.failed == 0
    assert "GET /v1/me" in report.missing


def test_raw_test_traffic_does_not_count_as_coverage(spec: Any) -> None:
    session = the_whole_plugin_session()
    for log_entry in session:
        if log_entry["path"] == "/v1/images":
            log_entry["request_headers"] = RAW
    report = oc.check_log(spec, [json.dumps(e) for e in session], require_endpoints=True)
    assert report.failed == 0, report.lines
    assert report.missing == ["GET /v1/images"]


def test_later_pages_take_the_project_from_the_token(spec: Any) -> None:
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


def test_lines_that_are_not_entries_fail(spec: Any) -> None:
    report = oc.check_log(spec, [json.dumps(create_disk()), "", "{not json", "[1]"])
    assert (report.passed, report.failed) == (1, 2)
    assert report.lines[0].startswith("#3 ? ? None: not JSON")
    assert report.lines[1] == "#4 ? ? None: entry is not a JSON object"


def test_empty_log_fails_even_without_required_endpoints(spec: Any) -> None:
    report = oc.check_log(spec, ["", "  "])
    assert not report.ok
    assert report.lines[-1] == "0 passed, 0 failed"


def test_command_line_reports_each_problem_and_exits_1(tmp_path: Path, spec: Any) -> None:
    log = tmp_path / "traffic.jsonl"
    log.write_text(
        "\n".join(json.dumps(e) for e in [create_disk(), create_disk(status=200)]) + "\n"
    )
    document = str(document_path())
    run = subprocess.run(
        [sys.executable, str(HERE / "openapi_conformance.py"), str(log), "--openapi", document],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert run.returncode == 1, run.stderr
    out = run.stdout.splitlines()
    assert out[0].startswith("#2 POST /v1/disks 200: status 200 not declared")
    assert out[-1] == "1 passed, 1 failed"

    log.write_text(json.dumps(create_disk()) + "\n")
    assert oc.main([str(log), "--openapi", document]) == 0
    assert oc.main([str(log), "--openapi", document, "--require-endpoints"]) == 1
