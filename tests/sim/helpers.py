"""Helpers for the simulator's own tests: a raw httpx client and small request builders.

Raw httpx on purpose (not the plugin's client): these tests pin what the simulated API does on
the wire, so a client bug cannot hide a simulator bug or the other way round.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx

from oxide_sim import SimulatorServer

TOKEN = "sim-test-token-0123456789abcdef"
PROJECT = "default"
GIB = 2**30
P = {"project": PROJECT}

T = TypeVar("T")


def client(
    sim: SimulatorServer, token: str | None = TOKEN, headers: dict[str, str] | None = None
) -> httpx.Client:
    """A client for ``sim`` sending ``Bearer token`` (none if token is None) plus ``headers``."""
    sent = {"authorization": f"Bearer {token}"} if token is not None else {}
    sent.update(headers or {})
    return httpx.Client(base_url=sim.url, headers=sent, timeout=10.0)


def disk_body(name: str, size: int = GIB, block_size: int = 4096, **extra: Any) -> dict[str, Any]:
    source = {"type": "blank", "block_size": block_size}
    body = {
        "name": name,
        "description": f"test disk {name}",
        "size": size,
        "disk_backend": {"type": "distributed", "disk_source": source},
    }
    body.update(extra)
    return body


def snapshot_disk_body(name: str, snapshot_id: str, size: int = GIB) -> dict[str, Any]:
    return {
        "name": name,
        "description": "",
        "size": size,
        "disk_backend": {
            "type": "distributed",
            "disk_source": {"type": "snapshot", "snapshot_id": snapshot_id},
        },
    }


def create_disk(c: httpx.Client, name: str, **kwargs: Any) -> dict[str, Any]:
    r = c.post("/v1/disks", params=P, json=disk_body(name, **kwargs))
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def instance(c: httpx.Client, name: str = "instance-0") -> dict[str, Any]:
    r = c.get(f"/v1/instances/{name}", params=P)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def disk(c: httpx.Client, disk_id: str) -> dict[str, Any]:
    r = c.get(f"/v1/disks/{disk_id}")
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def wait_for(fn: Callable[[], T | None], what: str, deadline_s: float = 10.0) -> T:
    """Poll ``fn`` until it returns something truthy; fail (not time) after ``deadline_s``."""
    end = time.monotonic() + deadline_s
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.01)


def wait_run_state(c: httpx.Client, name: str, state: str) -> dict[str, Any]:
    def check() -> dict[str, Any] | None:
        inst = instance(c, name)
        return inst if inst["run_state"] == state else None

    return wait_for(check, f"{name} to be {state}")


def stop_instance(c: httpx.Client, name: str = "instance-0") -> dict[str, Any]:
    r = c.post(f"/v1/instances/{name}/stop", params=P)
    assert r.status_code == 202, r.text
    return wait_run_state(c, name, "stopped")


def assert_error(r: httpx.Response, status: int, code: str | None, fragment: str = "") -> None:
    """An Oxide ``Error`` body: request_id and message always, error_code when Nexus sets one."""
    assert r.status_code == status, r.text
    body = r.json()
    assert isinstance(body["request_id"], str) and body["request_id"]
    assert body["request_id"] == r.headers["x-request-id"]
    assert isinstance(body["message"], str)
    assert body.get("error_code") == code, body
    assert fragment in body["message"], body
    assert set(body) <= {"request_id", "message", "error_code"}
