"""``oxide-csi dev`` command line: refuses to start without root, in one line, before touching
anything; its flags."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from oxide_csi import cli


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root")
def test_dev_without_root_says_so_and_exits_2(plugin_env: dict[str, str], short_tmp: Path) -> None:
    state = short_tmp / "state"
    short_tmp.chmod(0o777)  # so that the unprivileged run could create things, were it to try
    unprivileged = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    dev = ["dev", "--endpoint", f"unix://{short_tmp}/s.sock", "--state-dir", str(state)]
    result = subprocess.run(
        [*unprivileged, sys.executable, "-m", "oxide_csi", *dev],
        env=plugin_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "needs root" in lines[0]
    assert not state.exists()
    assert not (short_tmp / "s.sock").exists()


def test_dev_flags() -> None:
    args = cli._parser().parse_args(
        ["dev", "--oxide-listen", "127.0.0.1:12345", "--kubelet-dir", "/k", "--stop-seconds", "2"]
    )
    assert args.oxide_listen == "127.0.0.1:12345"
    assert args.kubelet_dir == "/k"
    assert args.stop_seconds == 2.0
    defaults = cli._parser().parse_args(["dev"])
    assert defaults.stop_seconds < 1
    assert defaults.start_seconds < 1  # fast by default: attach cycles stop and start
    assert defaults.kubelet_dir is None  # meaning STATE/kubelet
    assert defaults.hotplug is False  # a rack that stops to attach, as Oxide's released ones
    assert cli._parser().parse_args(["dev", "--hotplug"]).hotplug is True


def test_graceful_power_off_flags() -> None:
    """On by default in dev (the node plays the guest); each switch reaches serve's flags."""
    from oxide_csi.dev import _guest_args

    on = _guest_args(cli._parser().parse_args(["dev"]))
    assert on["graceful_power_off"] == "true"
    assert (on["power_off_heartbeat"], on["power_off_handler"]) == ("true", "true")
    assert on["graceful_stop_timeout"] == ""  # serve's default, 120 s
    off = _guest_args(cli._parser().parse_args(["dev", "--no-graceful-power-off"]))
    assert off == {}
    quiet = cli._parser().parse_args(
        ["dev", "--no-guest-heartbeat", "--no-guest-handler", "--graceful-stop-timeout", "5"]
    )
    assert _guest_args(quiet) == {
        "graceful_power_off": "true",
        "graceful_stop_timeout": "5",
        "power_off_heartbeat": "false",
        "power_off_handler": "false",
    }
