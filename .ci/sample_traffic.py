"""Hand-written traffic log entries for the tests of the OpenAPI conformance check.

Why: the check is only trusted if it is shown both accepting correct traffic and catching
each kind of mistake; these are the correct resources, requests and a whole correct plugin
session, from which the tests derive the mistakes one change at a time.
"""

from __future__ import annotations

import copy
from typing import Any

from conformance import Spec, check_entry

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
UTILIZATION: dict[str, Any] = {
    "capacity": {"cpus": 64, "memory": 1 << 40, "storage": 1 << 44},
    "provisioned": {"cpus": 2, "memory": 1 << 32, "storage": 1 << 31},
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


def problems(spec: Spec, log_entry: dict[str, Any]) -> list[str]:
    found, _ = check_entry(spec, log_entry)
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
        entry("GET", "/v1/images/debian-12", 200, IMAGE),
        entry("GET", "/v1/utilization", 200, UTILIZATION),
        entry("DELETE", by_id, 204, None, response_headers={}),
    ]
