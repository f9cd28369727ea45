"""The Dockerfile: hadolint-clean, and its entrypoint is the CLI the package installs.

There is no container engine on the test machines, so the image is not built here; what can
be checked without one is: the lint, that ENTRYPOINT/CMD name the console script pyproject
declares and that the same argv works with the installed script, that the final stage gets
only the virtual environment (no build tools), and that the build context holds what the
build copies.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

import oxide_csi
from tests.deploy.chart import REPO
from tests.deploy.dockerfile import DOCKERFILE, exec_form, stages

BIN = Path(sys.executable).parent


def _tool(name: str) -> str:
    found = BIN / name
    if found.exists():
        return str(found)
    path = shutil.which(name)
    assert path, f"{name} not installed (pyproject's test extra installs it)"
    return path


def hadolint(path: Path) -> list[dict[str, object]]:
    result = subprocess.run(
        [_tool("hadolint"), "--no-color", "--format", "json", str(path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    findings: list[dict[str, object]] = json.loads(result.stdout or "[]")
    assert (result.returncode == 0) == (not findings), result.stderr
    return findings


def test_hadolint_finds_nothing() -> None:
    assert hadolint(DOCKERFILE) == []


def test_hadolint_does_complain_about_a_bad_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian:latest\nRUN apt-get install curl\nENTRYPOINT oxide-csi\n")
    codes = {f["code"] for f in hadolint(bad)}
    assert {"DL3007", "DL3008", "DL3015"} <= codes


def test_entrypoint_is_the_console_script() -> None:
    final = stages()[-1]
    entrypoint = exec_form(final, "ENTRYPOINT")
    assert entrypoint == ["oxide-csi"]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts[entrypoint[0]] == "oxide_csi.launch:main"


def test_entrypoint_and_cmd_run_with_the_installed_script() -> None:
    final = stages()[-1]
    argv = exec_form(final, "ENTRYPOINT") + exec_form(final, "CMD")
    argv[0] = _tool(argv[0])
    result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "serve" in result.stdout
    version = subprocess.run(
        [argv[0], "--version"], capture_output=True, text=True, check=False, timeout=60
    )
    version_line = version.stdout.strip()
    # pyproject takes the version from the package; the installed distribution says which.
    assert "version" in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dynamic"]
    assert version_line == f"oxide-csi {metadata.version('oxide-csi')}"
    assert version_line == f"oxide-csi {oxide_csi.__version__}"
    # The image's version label agrees with the package.
    args = {i.value.split("=")[0]: i.value.split("=", 1)[1] for i in final if i.keyword == "ARG"}
    assert args["VERSION"] == oxide_csi.__version__


def test_console_script_is_on_the_image_path() -> None:
    build, final = stages()
    assert any(i.keyword == "RUN" and "python -m venv /opt/oxide-csi" in i.value for i in build), (
        "the build stage installs into /opt/oxide-csi"
    )
    env = " ".join(i.value for i in final if i.keyword == "ENV")
    assert "PATH=/opt/oxide-csi/bin:$PATH" in env


def test_final_stage_takes_only_the_environment_and_runtime_tools() -> None:
    final = stages()[-1]
    copies = [i.value for i in final if i.keyword == "COPY"]
    assert copies == ["--from=build /opt/oxide-csi /opt/oxide-csi"]
    (install,) = [i.value for i in final if i.keyword == "RUN"]
    packages = {word.split("=")[0] for word in install.split() if "=" in word and "-" in word}
    assert {"e2fsprogs", "xfsprogs", "util-linux", "mount"} <= packages
    for tool in ("gcc", "make", "build-essential", "git", "curl"):
        assert tool not in install.split()
    # Every package is pinned (name=version), and lists are not left in the layer.
    for word in install.split():
        if word in packages:
            pytest.fail(f"{word} is not pinned")
    assert "rm -rf /var/lib/apt/lists/*" in install


def test_build_context_holds_what_the_build_copies() -> None:
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    assert "*" in ignore  # everything out by default ...
    for ins in stages()[0]:
        if ins.keyword == "COPY":
            *sources, _dest = ins.value.split()
            for source in sources:
                name = source.rstrip("/").removeprefix("./")
                assert f"!{name}" in ignore or f"!{name}/" in ignore, source  # ... these back in
                assert (REPO / name).exists(), source
