"""``.ci/run`` stops at the first failing step, the README's test command included.

Why: in ``a && b`` bash's ``set -e`` ignores a failing ``a``, so a bootstrap that failed in the
README's test command used to let CI skip the tests and go on to green. The runs below use a
clone of this repository with ``scripts/bootstrap`` replaced and stand-in tools that all
succeed, so only ``.ci/run``'s own handling of the failure can end it non-zero.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ("python", "pytest", "ruff", "mypy")


def _clone(tmp_path: Path, bootstrap: str) -> tuple[Path, Path]:
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=60)
    shutil.copy2(ROOT / ".ci" / "run", clone / ".ci" / "run")  # the run script as it is now
    script = clone / "scripts" / "bootstrap"
    script.write_text(f"#!/usr/bin/env bash\n{bootstrap}\n")
    script.chmod(0o755)
    calls = tmp_path / "calls.log"
    return clone, calls


def _run(clone: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    shared = tmp_path / "shared"
    shared.mkdir()
    env = {**os.environ, "OXIDE_SHARED": str(shared)}
    return subprocess.run(
        ["bash", str(clone / ".ci" / "run")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_ci_stops_when_bootstrap_fails(tmp_path: Path) -> None:
    clone, _ = _clone(tmp_path, "exit 1")
    result = _run(clone, tmp_path)
    assert result.returncode != 0, result.stdout + result.stderr


@pytest.mark.parametrize("status", [1, 3])
def test_ci_stops_when_the_readme_test_commands_bootstrap_fails(
    tmp_path: Path, status: int
) -> None:
    """``bootstrap --dev`` succeeds and leaves tools that all succeed; the README command's
    plain ``bootstrap`` fails: CI ends with that status and never runs pytest."""
    clone, calls = _clone(tmp_path, "")
    stand_in = f'#!/bin/sh\necho "$0 $*" >> {calls}\nexit 0\n'
    tools = "; ".join(
        f"printf '%s' '{stand_in}' > .venv/bin/{tool}; chmod +x .venv/bin/{tool}" for tool in TOOLS
    )
    bootstrap = (
        f'if [ "${{1:-}}" = --dev ]; then mkdir -p .venv/bin; {tools}; exit 0; fi\nexit {status}'
    )
    (clone / "scripts" / "bootstrap").write_text(f"#!/usr/bin/env bash\n{bootstrap}\n")
    result = _run(clone, tmp_path)
    assert result.returncode == status, result.stdout + result.stderr
    assert "the README's test command failed" in result.stderr
    ran = calls.read_text() if calls.exists() else ""
    assert "pytest" not in ran, ran


@pytest.mark.parametrize(("required", "outcome"), [("1", "1 failed"), ("", "1 skipped")])
def test_a_conformance_test_without_its_document_fails_under_ci(
    tmp_path: Path, required: str, outcome: str
) -> None:
    """``.ci/run`` sets ``$OXIDE_CONFORMANCE_REQUIRED``: there a missing tool is a failure."""
    env = {
        **os.environ,
        "OXIDE_OPENAPI": str(tmp_path / "missing.json"),
        "OXIDE_CONFORMANCE_REQUIRED": required,
    }
    test = "tests/sim/test_conformance.py::test_every_route_and_error_conforms"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert outcome in result.stdout, result.stdout
