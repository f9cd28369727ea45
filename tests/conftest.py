"""Fixtures shared by the whole suite: short temp dirs (unix socket paths are limited to 107
bytes) and a running plugin process talking real gRPC over a unix socket."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.plugin_process import PluginProcess, release_dev_devices


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="ocsi-", dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def plugin_env() -> dict[str, str]:
    """A clean environment for plugin processes: no Oxide settings leak in from the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OXIDE_", "CSI_"))}
    env["HOME"] = tempfile.mkdtemp(prefix="ocsi-home-", dir="/tmp")
    # The controller's self power-off guard fails closed without DMI (as on this machine): the
    # test runner is no simulated instance, so it guards a fresh id that names none of them.
    env["OXIDE_CSI_CONTROLLER_INSTANCE_ID"] = str(uuid.uuid4())
    return env


@pytest.fixture
def plugin_factory(short_tmp: Path) -> Iterator[type[PluginProcess]]:
    started: list[PluginProcess] = []

    class Tracked(PluginProcess):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            started.append(self)

    yield Tracked
    for proc in started:
        proc.stop()
    if any(proc.args[:1] == ["dev"] for proc in started):
        release_dev_devices(short_tmp)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the reliability suites' counts (see ``tests/reliability/report.py``)."""
    from tests.reliability.report import LINES

    if LINES:
        terminalreporter.section("reliability: what was tried and found")
        for line in LINES:
            terminalreporter.write_line(line)
