"""A test's dev process never leaves loop devices behind, even when the test fails.

Dev mode releases its loop devices (and their mounts) on an orderly exit and reaps a crashed
run's at its next start; a test that fails half-way leaves its process to the fixture, whose
SIGKILL allowed neither, and its state directory had no next start: the devices stayed bound to
deleted files until the machine rebooted. The fixture now stops a process with SIGTERM first and
releases what a SIGKILLed dev process left under the test's directory.
"""

from __future__ import annotations

import signal
from pathlib import Path

from oxide_csi.devplane.loops import list_loops
from tests.dev.devproc import dev_args
from tests.plugin_process import PluginProcess, release_dev_devices


def _bound_under(base: Path) -> list[str]:
    real = str(base.resolve()) + "/"
    return [loop.name for loop in list_loops() if str(loop.backing).startswith(real)]


def test_a_sigkilled_dev_process_leaves_nothing_bound(
    plugin_env: dict[str, str], short_tmp: Path
) -> None:
    endpoint = f"unix://{short_tmp}/dev.sock"
    plugin = PluginProcess(dev_args(endpoint, short_tmp / "state"), plugin_env, short_tmp)
    try:
        plugin.wait_ready(endpoint).close()
        assert _bound_under(short_tmp), "dev mode binds the running instance's boot disk"
        plugin.proc.send_signal(signal.SIGKILL)
        plugin.proc.wait(30)
        assert _bound_under(short_tmp), "a SIGKILL releases nothing"
    finally:
        plugin.kill()
        release_dev_devices(short_tmp)
    assert _bound_under(short_tmp) == []


def test_stop_lets_dev_release_its_devices(plugin_env: dict[str, str], short_tmp: Path) -> None:
    endpoint = f"unix://{short_tmp}/dev.sock"
    plugin = PluginProcess(dev_args(endpoint, short_tmp / "state"), plugin_env, short_tmp)
    try:
        plugin.wait_ready(endpoint).close()
        assert _bound_under(short_tmp)
        plugin.stop()
        assert plugin.proc.returncode == 0, plugin.output()
    finally:
        plugin.kill()
    assert _bound_under(short_tmp) == []
