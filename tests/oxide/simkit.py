"""Helpers of the Oxide client tests: /sim hook access, a request recorder, client settings.

The /sim hooks (stats, faults, faulted disks, failing starts) are driven over HTTP by a plain
httpx client whose User-Agent is *not* ``oxide-csi/...``, so the CI conformance check holds
only the plugin's own client to the OpenAPI document.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from oxide_csi.oxide import OxideConfig
from oxide_sim import SimulatorServer

#: A token that is also a valid Oxide name, so a test can make the server echo it back.
TOKEN = "tok-9f2c81d4e7b3a6-zz"
PROJECT = "default"
GIB = 2**30


@dataclass
class Attempt:
    """One HTTP attempt as the client's ``on_request`` hook reported it."""

    method: str
    template: str
    status: int | None
    attempt: int


@dataclass
class Recorder:
    """Collects ``on_request`` reports; ``after`` runs after each one (e.g. to lift a fault)."""

    attempts: list[Attempt] = field(default_factory=list)
    after: Callable[[Attempt], None] | None = None

    def __call__(
        self, method: str, template: str, status: int | None, seconds: float, attempt: int
    ) -> None:
        record = Attempt(method, template, status, attempt)
        self.attempts.append(record)
        if self.after is not None:
            self.after(record)

    def count(self, method: str, template: str) -> int:
        return sum(1 for a in self.attempts if a.method == method and a.template == template)


class Sim:
    """A running simulator plus access to its /sim hooks and its private traffic log."""

    def __init__(self, server: SimulatorServer, traffic: Path) -> None:
        self.server = server
        self.traffic = traffic
        self.url = server.url
        self._hooks = httpx.Client(base_url=self.url, timeout=10.0, trust_env=False)

    def close(self) -> None:
        self._hooks.close()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        resp = self._hooks.request(method, path, json=body)
        resp.raise_for_status()
        return resp.json()

    def stats(self) -> dict[str, int]:
        """Requests the simulator received, keyed ``"METHOD /template"`` (faulted ones too)."""
        counts: dict[str, int] = self._call("GET", "/sim/stats")["requests"]
        return counts

    def hits(self, key: str) -> int:
        return self.stats().get(key, 0)

    def instance_stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self._call("GET", "/sim/stats")["instances"]
        return stats

    def faults(self, **settings: Any) -> None:
        self._call("PUT", "/sim/faults", settings)

    def no_faults(self) -> None:
        self.faults(
            error_rate=0.0, rate_limit_rate=0.0, drop_rate=0.0, latency_rate=0.0, path_regex=None
        )

    def fault_disk(self, disk_id: str) -> None:
        self._call("POST", f"/sim/disks/{disk_id}/fault")

    def fail_instance(self, instance: str) -> None:
        """Its VMM dies: ``failed``, and restarted by the rack if its policy allows."""
        self._call("POST", f"/sim/instances/{instance}/fail")

    def auto_restart_policy(self, instance: str, policy: str | None) -> None:
        self._call("PUT", f"/sim/instances/{instance}/auto-restart-policy", {"policy": policy})

    def start_failures(self, instance: str, count: int) -> None:
        self._call("POST", f"/sim/instances/{instance}/start-failures", {"count": count})

    def requests(self) -> list[dict[str, Any]]:
        """Every answered /v1 exchange so far, oldest first (dropped ones are not logged)."""
        if not self.traffic.exists():
            return []
        lines = self.traffic.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]


def lift_faults_after(
    sim: Sim, method: str, template: str, times: int = 1
) -> Callable[[Attempt], None]:
    """A ``Recorder.after`` that turns the simulator's faults off once ``method template`` has
    been attempted ``times`` times: a fault that hits exactly the first try(s), then heals."""
    seen = 0

    def after(attempt: Attempt) -> None:
        nonlocal seen
        if attempt.method == method and attempt.template == template:
            seen += 1
            if seen == times:
                sim.no_faults()

    return after


def client_config(url: str, **overrides: Any) -> OxideConfig:
    """Fast retries and polling so fault tests stay short; the default User-Agent is kept."""
    settings: dict[str, Any] = {
        "host": url,
        "token": TOKEN,
        "project": PROJECT,
        "request_timeout": 5.0,
        "connect_timeout": 2.0,
        "max_attempts": 4,
        "backoff_base": 0.002,
        "backoff_max": 0.02,
        "poll_initial": 0.005,
        "poll_max": 0.02,
        "wait_timeout": 10.0,
    }
    settings.update(overrides)
    return OxideConfig(**settings)


def deadline_in(seconds: float) -> float:
    """An absolute deadline on the ``time.monotonic()`` clock, as every client method takes."""
    return time.monotonic() + seconds
