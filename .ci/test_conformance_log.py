"""Tests of the conformance check over a whole log: coverage, bad lines, the command line.

Why: CI passes or fails on the log as a whole, so a full correct plugin session must pass,
missing coverage must be named, traffic that proves nothing (refused, or raw test traffic)
must not count as coverage, and an empty log or a bad line must fail.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import openapi_conformance
from conformance import Spec, check_log
from sample_traffic import BAD_REQUEST, RAW, create_disk, entry, problems, the_whole_plugin_session

HERE = Path(__file__).resolve().parent


def test_openapi_document_is_present(document_path: Path) -> None:
    assert document_path.is_file(), f"no Oxide OpenAPI document at {document_path}"


def test_every_operation_of_a_correct_session_passes(spec: Spec) -> None:
    for log_entry in the_whole_plugin_session():
        assert problems(spec, log_entry) == [], log_entry


def test_require_endpoints_passes_on_full_coverage(spec: Spec) -> None:
    lines = [json.dumps(e) for e in the_whole_plugin_session()]
    report = check_log(spec, lines, require_endpoints=True)
    assert report.ok, report.lines
    assert report.lines[-1] == f"{len(lines)} passed, 0 failed"


def test_missing_coverage_is_named(spec: Spec) -> None:
    session = [e for e in the_whole_plugin_session() if e["path"] != "/v1/images"]
    report = check_log(spec, [json.dumps(e) for e in session], require_endpoints=True)
    assert not report.ok
    assert report.missing == ["GET /v1/images"]
    assert report.lines[-1] == f"{len(session)} passed, 0 failed"
    # Without the flag the same log is fine.
    assert check_log(spec, [json.dumps(e) for e in session]).ok


def test_refused_requests_do_not_count_as_coverage(spec: Spec) -> None:
    lines = [json.dumps(entry("GET", "/v1/projects/default", 401, BAD_REQUEST))]
    report = check_log(spec, lines, require_endpoints=True)
    assert report.failed == 0
    assert "GET /v1/projects/{project}" in report.missing


def test_coverage_asks_only_for_requests_the_plugin_sends(spec: Spec) -> None:
    """``GET /v1/me`` has no caller in the plugin: a log without it is complete."""
    session = [e for e in the_whole_plugin_session() if e["path"] != "/v1/me"]
    assert check_log(spec, [json.dumps(e) for e in session], require_endpoints=True).ok


def test_raw_test_traffic_does_not_count_as_coverage(spec: Spec) -> None:
    session = the_whole_plugin_session()
    for log_entry in session:
        if log_entry["path"] == "/v1/images":
            log_entry["request_headers"] = RAW
    report = check_log(spec, [json.dumps(e) for e in session], require_endpoints=True)
    assert report.failed == 0, report.lines
    assert report.missing == ["GET /v1/images"]


def test_lines_that_are_not_entries_fail(spec: Spec) -> None:
    report = check_log(spec, [json.dumps(create_disk()), "", "{not json", "[1]"])
    assert (report.passed, report.failed) == (1, 2)
    assert report.lines[0].startswith("#3 ? ? None: not JSON")
    assert report.lines[1] == "#4 ? ? None: entry is not a JSON object"


def test_empty_log_fails_even_without_required_endpoints(spec: Spec) -> None:
    report = check_log(spec, ["", "  "])
    assert not report.ok
    assert report.lines[-1] == "0 passed, 0 failed"


def test_command_line_reports_each_problem_and_exits_1(
    tmp_path: Path, spec: Spec, document_path: Path
) -> None:
    log = tmp_path / "traffic.jsonl"
    log.write_text(
        "\n".join(json.dumps(e) for e in [create_disk(), create_disk(status=200)]) + "\n"
    )
    document = str(document_path)
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
    assert openapi_conformance.main([str(log), "--openapi", document]) == 0
    assert openapi_conformance.main([str(log), "--openapi", document, "--require-endpoints"]) == 1
