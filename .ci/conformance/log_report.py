"""Check a whole traffic log: every entry, the operations covered, and the summary CI prints.

Why: a log that passes because it is empty, or because the client never reached an
operation the plugin needs, proves nothing; so the report fails on an empty log and, with
``require_endpoints``, on any required operation the client never got a 2xx answer for.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from .document import Spec
from .entries import CLIENT_AGENT_PREFIX, check_entry

# Operations the test suite must exercise successfully (a 2xx answer) under --require-endpoints.
REQUIRED_OPERATIONS: tuple[str, ...] = (
    "GET /v1/projects/{project}",
    "GET /v1/disks",
    "POST /v1/disks",
    "GET /v1/disks/{disk}",
    "DELETE /v1/disks/{disk}",
    "GET /v1/snapshots",
    "POST /v1/snapshots",
    "GET /v1/snapshots/{snapshot}",
    "DELETE /v1/snapshots/{snapshot}",
    "GET /v1/instances",
    "GET /v1/instances/{instance}",
    "POST /v1/instances/{instance}/start",
    "POST /v1/instances/{instance}/stop",
    "GET /v1/instances/{instance}/disks",
    "POST /v1/instances/{instance}/disks/attach",
    "POST /v1/instances/{instance}/disks/detach",
    "GET /v1/images",
)


@dataclass
class Report:
    """Outcome of checking one log; ``lines`` is what the CLI prints."""

    passed: int = 0
    failed: int = 0
    client_entries: int = 0
    unanswered: int = 0
    succeeded: set[str] = field(default_factory=set)
    missing: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and not self.missing and self.passed > 0


def check_log(spec: Spec, lines: Iterable[str], require_endpoints: bool = False) -> Report:
    report = Report()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError as exc:
            entry, problems, key = None, [f"not JSON: {exc}"], None
        else:
            if isinstance(entry, dict):
                problems, key = check_entry(spec, entry)
            else:
                problems, key = ["entry is not a JSON object"], None
        entry = entry if isinstance(entry, dict) else {}
        status = entry.get("status")
        headers = entry.get("request_headers") or {}
        from_client = str(headers.get("user-agent", "")).startswith(CLIENT_AGENT_PREFIX)
        report.client_entries += from_client
        report.unanswered += status is None
        # Coverage is the client's: a test poking the simulator directly proves nothing about
        # what the plugin sends.
        if from_client and key is not None and isinstance(status, int) and 200 <= status < 300:
            report.succeeded.add(key)
        if problems:
            report.failed += 1
            head = f"#{number} {entry.get('method', '?')} {entry.get('path', '?')} {status}"
            report.lines += [f"{head}: {p}" for p in problems]
        else:
            report.passed += 1
    total = report.passed + report.failed
    if require_endpoints:
        report.missing = [k for k in REQUIRED_OPERATIONS if k not in report.succeeded]
    report.lines.append(
        f"summary: {total} entries, {report.client_entries} from the "
        f"{CLIENT_AGENT_PREFIX} client, {report.unanswered} without a response; "
        f"{len(report.succeeded)} client operations answered 2xx"
    )
    if total == 0:
        report.lines.append("FAIL: the traffic log holds no entries")
    if report.missing:
        report.lines.append("FAIL: no 2xx response in the log for: " + ", ".join(report.missing))
    report.lines.append(f"{report.passed} passed, {report.failed} failed")
    return report
