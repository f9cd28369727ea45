"""Graceful power-off settings: off by default, resolved once at start, refused with one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from oxide_csi.config import build_serve_config
from oxide_csi.config_common import ConfigError
from oxide_csi.poweroff.agent import BOOT_ID_FILE, DEFAULT_COMMAND

UUID = "9f1c2b3a-0000-4000-8000-00000000000a"
OXIDE_ENV = {
    "OXIDE_HOST": "https://r",
    "OXIDE_TOKEN": "oxide-token-0123456789abcdef0123456789",
    "OXIDE_PROJECT": "p",
    "OXIDE_CSI_CONTROLLER_INSTANCE_ID": "none",
}


def test_off_by_default() -> None:
    config = build_serve_config({"mode": "all", "node_id": UUID}, OXIDE_ENV)
    assert config.node is not None and config.node.guest is None
    assert config.controller is not None and not config.controller.graceful_power_off
    assert config.controller.graceful_stop_timeout == 120


def test_on_for_both_sides(tmp_path: Path) -> None:
    env = {**OXIDE_ENV, "OXIDE_CSI_GRACEFUL_POWER_OFF": "true", "OXIDE_CSI_BOOT_ID_FILE": "/b"}
    args = {"mode": "all", "node_id": UUID.upper(), "state_dir": str(tmp_path)}
    config = build_serve_config({**args, "graceful_stop_timeout": "30"}, env)
    assert config.controller is not None and config.controller.graceful_power_off
    assert config.controller.graceful_stop_timeout == 30
    guest = config.node.guest if config.node else None
    assert guest is not None and guest.instance_id == UUID  # the node id, lower-cased
    assert guest.channel_dir == tmp_path / "poweroff" and guest.kube is None
    assert (guest.heartbeat, guest.handler, guest.command) == (True, True, DEFAULT_COMMAND)
    assert guest.boot_id_file == Path("/b")


def test_node_switches_and_command(tmp_path: Path) -> None:
    args = {
        "mode": "node",
        "node_id": "worker-1",  # not a UUID: the instance comes from DMI
        "graceful_power_off": True,
        "power_off_heartbeat": "false",
        "power_off_handler": "off",
        "power_off_command": "chroot /host 'systemctl' poweroff",
    }
    dmi = tmp_path / "class/dmi/id"
    dmi.mkdir(parents=True)
    (dmi / "product_uuid").write_text(UUID.upper() + "\n")
    guest = build_serve_config(args, {}, sys_root=tmp_path).node.guest  # type: ignore[union-attr]
    assert guest is not None and guest.instance_id == UUID
    assert (guest.heartbeat, guest.handler) == (False, False)
    assert guest.command == ("chroot", "/host", "systemctl", "poweroff")
    assert guest.boot_id_file == BOOT_ID_FILE


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ({"node_id": "worker-1"}, {}, "instance UUID"),  # no DMI readable
        ({"node_id": UUID, "power_off_command": "'"}, {}, "cannot be parsed"),
        ({"node_id": UUID, "power_off_handler": "perhaps"}, {}, "true or false"),
        ({"node_id": UUID, "state_backend": "kubernetes"}, {}, "namespace"),
    ],
)
def test_refused_with_one_line(
    tmp_path: Path, args: dict[str, object], env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        build_serve_config(
            {"mode": "node", "graceful_power_off": True, **args}, env, sys_root=tmp_path
        )


def test_controller_timeout_bounds() -> None:
    env = {**OXIDE_ENV, "OXIDE_CSI_GRACEFUL_STOP_TIMEOUT": "9999"}
    with pytest.raises(ConfigError, match="graceful stop timeout"):
        build_serve_config({"mode": "controller"}, env)
