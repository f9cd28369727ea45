"""Tests of the release-aware check: old-release traffic meets its own release's document.

Why: the simulator plays releases v15..v22; a v17 exchange (``disk_source`` at the top of
DiskCreate, no ``disk_type`` in the Disk view) must pass against the v17 document, fail against
the newest one, and fail loudly when no document for its release was given -- never pass
unchecked. The api-version rule holds only for versioned (v18+) documents.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conformance import Spec, check_log, load_release_specs, spec_for
from sample_traffic import (
    BAD_REQUEST,
    CLIENT,
    CREATE_BODY,
    DISK,
    ME,
    create_disk,
    entry,
    without,
)

V17_BODY = {
    "name": "pvc-1",
    "description": "",
    "size": 1 << 30,
    "disk_source": {"type": "blank", "block_size": 4096},
}
V17_DISK = without(without(DISK, "disk_type"), "read_only")


@pytest.fixture(scope="module")
def older(document_path: Path) -> dict[int, Spec]:
    found = load_release_specs(document_path.parent / "releases")
    assert set(found) == {15, 17}
    return found


def _v17_create() -> dict[str, object]:
    made = create_disk(response=V17_DISK, body=V17_BODY)
    made["release"] = "v17"
    return made


def _check(spec: Spec, older: dict[int, Spec] | None, *entries: dict[str, object]) -> list[str]:
    report = check_log(spec, [json.dumps(e) for e in entries], older=older)
    return [line for line in report.lines if line.startswith("#")]


def test_v17_traffic_passes_against_the_v17_document(spec: Spec, older: dict[int, Spec]) -> None:
    assert _check(spec, older, _v17_create()) == []


def test_v17_traffic_fails_against_the_newest_document(spec: Spec) -> None:
    unreleased = _v17_create()
    del unreleased["release"]
    assert any("disk_backend" in p for p in _check(spec, None, unreleased))


def test_new_shapes_fail_as_v17_traffic(spec: Spec, older: dict[int, Spec]) -> None:
    made = create_disk(response=DISK, body=CREATE_BODY)
    made["release"] = "v17"
    found = _check(spec, older, made)
    assert any("disk_source" in p for p in found), found
    assert any("disk_type" in p for p in found), found


def test_release_without_a_document_fails(spec: Spec) -> None:
    found = _check(spec, None, _v17_create())
    assert found and "no OpenAPI document for release v17" in found[0]


def test_release_choice(spec: Spec, older: dict[int, Spec]) -> None:
    assert spec_for({"release": "v16"}, spec, older)[0] is older[15]
    assert spec_for({"release": "v17"}, spec, older)[0] is older[17]
    assert spec_for({"release": "v18"}, spec, older)[0] is spec
    assert spec_for({}, spec, older)[0] is spec
    assert spec_for({"release": "seventeen"}, spec, older)[0] is None


def test_api_version_rule_only_for_versioned_releases(spec: Spec, older: dict[int, Spec]) -> None:
    headers = {**CLIENT, "api-version": "2099010100.0.0"}
    me_new = entry("GET", "/v1/me", 200, ME, headers=headers)
    assert not older[17].versioned and spec.versioned
    v17_me = without(without(ME, "time_created"), "time_modified")
    old_me = dict(entry("GET", "/v1/me", 200, v17_me, headers=headers), release="v17")
    assert _check(spec, older, old_me) == []
    assert any("api-version" in p for p in _check(spec, older, me_new))


def test_generation_probe(spec: Spec, older: dict[int, Spec]) -> None:
    """The probe's too-new version is exempt from the pin rule, but a versioned rack must
    refuse it; any other too-new version still fails."""
    headers = {**CLIENT, "api-version": "9999999999.0.0"}
    refused = entry("GET", "/v1/me", 400, BAD_REQUEST, headers=headers)
    dropped = entry("GET", "/v1/me", None, None, headers=headers)
    assert _check(spec, older, refused, dropped) == []
    answered = entry("GET", "/v1/me", 200, ME, headers=headers)
    assert any("generation probe" in p for p in _check(spec, older, answered))
    other = entry("GET", "/v1/me", None, None, headers={**CLIENT, "api-version": "2099010100.0.0"})
    assert any("newer than the document" in p for p in _check(spec, older, other))
