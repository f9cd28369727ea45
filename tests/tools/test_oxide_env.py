"""``oxide-csi dev`` tells where everything is: it prints the environment a client needs and
writes it to ``STATE/oxide.env`` (0600), which a shell can source to reach the simulated rack."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import httpx
import pytest

from oxide_csi.tools import oxide_env
from tests.tools.conftest import Dev, clean_env


def test_dev_writes_the_environment_owner_only_and_prints_it(dev: Dev) -> None:
    path = dev.state / "oxide.env"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    values = dev.env()
    assert values["OXIDE_HOST"].startswith("http://127.0.0.1:")
    assert values["OXIDE_TOKEN"].startswith("oxide-token-dev-")
    assert values["OXIDE_PROJECT"] == "default"
    assert values["CSI_ENDPOINT"] == dev.endpoint
    assert values["KUBELET_DIR"] == str(dev.kubelet)
    printed = dev.process.output()
    for line in path.read_text().splitlines():
        assert line.startswith("export ")
        assert line + "\n" in printed  # the same lines, ready to paste into a shell


def test_sourced_environment_lists_the_projects_disks_over_http(dev: Dev) -> None:
    shell = subprocess.run(
        ["bash", "-c", 'source "$1" && env -0', "bash", str(dev.state / "oxide.env")],
        env=clean_env(),
        capture_output=True,
        check=True,
    )
    env = dict(item.split("=", 1) for item in shell.stdout.decode().split("\0") if "=" in item)
    disks = httpx.get(
        f"{env['OXIDE_HOST']}/v1/disks",
        params={"project": env["OXIDE_PROJECT"]},
        headers={"Authorization": f"Bearer {env['OXIDE_TOKEN']}"},
        timeout=10,
    )
    assert disks.status_code == 200, disks.text
    assert "instance-0-boot" in [d["name"] for d in disks.json()["items"]]
    anonymous = httpx.get(
        f"{env['OXIDE_HOST']}/v1/disks", params={"project": env["OXIDE_PROJECT"]}, timeout=10
    )
    assert anonymous.status_code == 401  # the token is what opens the rack


def test_file_round_trips_values_a_shell_would_mangle(tmp_path: Path) -> None:
    values = {"OXIDE_HOST": "http://h:1", "ODD": 'it\'s $HOME `x` "y" ; z'}
    path = oxide_env.write(tmp_path, values)
    assert oxide_env.read(path) == values
    shell = subprocess.run(
        ["bash", "-c", 'source "$1" && printf %s "$ODD"', "bash", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert shell.stdout == values["ODD"]


def test_rewrite_narrows_a_wider_mode(tmp_path: Path) -> None:
    (tmp_path / ".oxide.env.tmp").write_text("stale")
    os.chmod(tmp_path / ".oxide.env.tmp", 0o644)
    path = oxide_env.write(tmp_path, {"OXIDE_TOKEN": "t"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not (tmp_path / ".oxide.env.tmp").exists()


@pytest.mark.parametrize("line", ["export", "export A", "1A=b", "A=b c", "A='unterminated"])
def test_malformed_lines_are_refused(line: str) -> None:
    with pytest.raises(oxide_env.OxideEnvError):
        oxide_env.parse(line)
