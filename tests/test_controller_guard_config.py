"""Configuration of the controller's self power-off guard and of the per-instance disk limit.

The guard fails closed: a controller that cannot tell which instance it runs on must not start,
unless the operator says ``none``. The DMI path is injected (``sys_root``; the process reads
``OXIDE_CSI_SYSFS_ROOT``) so these tests do not depend on the machine running them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from oxide_csi.config import build_serve_config
from oxide_csi.config_common import ConfigError

UUID = "7d1e8a0c-5b2f-4c61-9a83-0f4e6b2d9c17"
BASE_ENV = {"OXIDE_HOST": "https://rack.example", "OXIDE_TOKEN": "tok-1234", "OXIDE_PROJECT": "p"}


def _dmi(root: Path, text: str) -> Path:
    (root / "class/dmi/id").mkdir(parents=True)
    (root / "class/dmi/id/product_uuid").write_text(text + "\n")
    return root


def test_guard_reads_the_dmi_uuid_when_no_id_is_given(tmp_path: Path) -> None:
    sys_root = _dmi(tmp_path, UUID.upper())
    config = build_serve_config({"mode": "controller"}, BASE_ENV, sys_root=sys_root)
    assert config.controller is not None and config.controller.controller_instance_id == UUID


def test_guard_fails_closed_without_dmi_or_id(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"controller instance unknown.*--controller-instance"):
        build_serve_config({"mode": "controller"}, BASE_ENV, sys_root=tmp_path)


@pytest.mark.parametrize("value", ["none", "NONE", " none "])
def test_none_turns_the_guard_off(tmp_path: Path, value: str) -> None:
    sys_root = _dmi(tmp_path, UUID)  # even with DMI readable: the operator's word wins
    env = {**BASE_ENV, "OXIDE_CSI_CONTROLLER_INSTANCE_ID": value}
    config = build_serve_config({"mode": "controller"}, env, sys_root=sys_root)
    assert config.controller is not None and config.controller.controller_instance_id is None


def test_the_flag_or_variable_wins_over_dmi_and_must_be_a_uuid(tmp_path: Path) -> None:
    sys_root = _dmi(tmp_path, UUID)
    other = "11111111-2222-4333-8444-555555555555"
    env = {**BASE_ENV, "OXIDE_CSI_CONTROLLER_INSTANCE_ID": other}
    config = build_serve_config({"mode": "controller"}, env, sys_root=sys_root)
    assert config.controller is not None and config.controller.controller_instance_id == other
    with pytest.raises(ConfigError, match="UUID or 'none'"):
        build_serve_config({"mode": "controller", "controller_instance_id": "node-1"}, env)


def test_node_mode_needs_no_guard(tmp_path: Path) -> None:
    config = build_serve_config({"mode": "node", "node_id": "n"}, {}, sys_root=tmp_path)
    assert config.controller is None


def _serve(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oxide_csi", "serve", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_process_without_a_readable_uuid_exits_2_with_one_line(
    plugin_env: dict[str, str], tmp_path: Path
) -> None:
    env = {k: v for k, v in plugin_env.items() if k != "OXIDE_CSI_CONTROLLER_INSTANCE_ID"}
    env.update(BASE_ENV, OXIDE_CSI_SYSFS_ROOT=str(tmp_path))
    result = _serve(["--mode", "controller"], env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "controller instance unknown" in lines[0], result.stderr
    assert "none" in lines[0]


@pytest.mark.parametrize("value", ["13", "64"])
def test_more_than_twelve_disks_per_instance_is_a_config_error(
    plugin_env: dict[str, str], value: str
) -> None:
    env = {**plugin_env, **BASE_ENV}
    result = _serve(["--mode", "controller", "--max-disks-per-instance", value], env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "between 2 and 12" in lines[0], result.stderr


def test_twelve_disks_per_instance_is_allowed() -> None:
    env = {**BASE_ENV, "OXIDE_CSI_CONTROLLER_INSTANCE_ID": UUID}
    config = build_serve_config({"mode": "controller", "max_disks_per_instance": "12"}, env)
    assert config.controller is not None and config.controller.max_disks_per_instance == 12
