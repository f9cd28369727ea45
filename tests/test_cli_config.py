"""The command line and configuration: clear one-line errors, exit 2, never the token."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from oxide_csi import __version__, cli
from oxide_csi.config import Mode, build_serve_config
from oxide_csi.config_common import ConfigError
from oxide_csi.credentials import resolve_credentials
from oxide_csi.endpoint import EndpointError, parse_endpoint

TOKEN = "oxide-token-clitest9876543210"


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oxide_csi", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_version(plugin_env) -> None:
    result = _run(["--version"], plugin_env)
    assert result.returncode == 0
    assert result.stdout.strip() == f"oxide-csi {__version__}"


def test_serve_without_configuration_is_one_line_exit_2(plugin_env) -> None:
    result = _run(["serve"], plugin_env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("oxide-csi: error:")
    assert "OXIDE_HOST" in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("extra", "expect"),
    [
        ({"OXIDE_HOST": "https://rack.example"}, "OXIDE_TOKEN"),
        ({"OXIDE_TOKEN": TOKEN}, "OXIDE_HOST"),
        ({"OXIDE_HOST": "rack.example", "OXIDE_TOKEN": TOKEN}, "http(s) URL"),
        ({"OXIDE_HOST": "https://r", "OXIDE_TOKEN": TOKEN}, "OXIDE_PROJECT"),
        (
            {"OXIDE_HOST": "https://r", "OXIDE_TOKEN": TOKEN, "OXIDE_PROJECT": "Bad_Name"},
            "OXIDE_PROJECT",
        ),
        ({"OXIDE_PROFILE": "nope"}, "profile 'nope'"),
        ({"CSI_ENDPOINT": "http://x"}, "unix://"),
    ],
)
def test_malformed_configuration_names_the_problem(plugin_env, extra, expect) -> None:
    result = _run(["serve", "--mode", "controller"], {**plugin_env, **extra})
    assert result.returncode == 2
    assert expect in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert TOKEN not in result.stderr + result.stdout


def test_node_mode_needs_a_node_id(plugin_env, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="node id"):
        build_serve_config({"mode": "node"}, {}, sys_root=tmp_path)
    (tmp_path / "class/dmi/id").mkdir(parents=True)
    uid = "5C7F1A3E-0B1D-4F5B-9D4C-2B7B9E1F0A11"
    (tmp_path / "class/dmi/id/product_uuid").write_text(uid + "\n")
    config = build_serve_config({"mode": "node"}, {}, sys_root=tmp_path)
    assert config.mode is Mode.NODE
    assert config.node is not None and config.node.node_id == uid.lower()
    named = build_serve_config({"mode": "node"}, {"KUBE_NODE_NAME": "worker-3"}, tmp_path)
    assert named.node is not None and named.node.node_id == "worker-3"


def test_profiles_from_credentials_toml(tmp_path: Path) -> None:
    (tmp_path / "credentials.toml").write_text(
        '[profile.lab]\nhost = "https://lab.example"\ntoken = "oxide-token-lab123"\nuser = "u"\n'
        '[profile.prod]\nhost = "https://prod.example"\ntoken = "oxide-token-prod456"\n'
    )
    env = {"OXIDE_CONFIG_DIR": str(tmp_path)}
    lab = resolve_credentials({**env, "OXIDE_PROFILE": "lab"})
    assert lab.host == "https://lab.example" and lab.token.reveal() == "oxide-token-lab123"
    assert "oxide-token-lab123" not in repr(lab)
    (tmp_path / "config.toml").write_text('default-profile = "prod"\n')
    assert resolve_credentials(env).host == "https://prod.example"
    # explicit environment wins over profiles
    explicit = resolve_credentials({**env, "OXIDE_HOST": "https://e", "OXIDE_TOKEN": "tok-1234"})
    assert explicit.host == "https://e" and explicit.source == "environment"


def test_flags_win_over_environment() -> None:
    env = {
        "OXIDE_HOST": "https://env.example",
        "OXIDE_TOKEN": TOKEN,
        "OXIDE_PROJECT": "envproj",
        "CSI_ENDPOINT": "unix:///env.sock",
        "OXIDE_CSI_CONTROLLER_INSTANCE_ID": "none",
    }
    own = "0b8f7a52-93a4-4a4c-b0a2-5e0f3cc1d2e1"
    config = build_serve_config(
        {
            "mode": "controller",
            "endpoint": "tcp://127.0.0.1:7000",
            "oxide_project": "flagproj",
            "controller_instance_id": own.upper(),
        },
        env,
    )
    assert config.controller is not None and config.controller.controller_instance_id == own
    assert str(config.endpoint) == "tcp://127.0.0.1:7000"
    assert config.oxide is not None and config.oxide.project == "flagproj"
    assert config.oxide.api_version == "2026021301.0.0"
    # no flag: the controller takes the rack's own limit
    assert config.controller is not None and config.controller.max_disks_per_instance is None
    assert TOKEN not in repr(config)


@pytest.mark.parametrize(
    ("flag", "env", "attachable"),
    [
        (None, {}, True),
        (None, {"OXIDE_CSI_ATTACHABLE": "false"}, False),
        ("true", {"OXIDE_CSI_ATTACHABLE": "false"}, True),
        ("False", {}, False),
    ],
)
def test_attachable_setting(flag: str | None, env: dict[str, str], attachable: bool) -> None:
    config = build_serve_config({"mode": "node", "node_id": "n", "attachable": flag}, env)
    assert config.node is not None and config.node.attachable is attachable


def test_attachable_must_be_a_boolean() -> None:
    with pytest.raises(ConfigError, match="attachable must be true or false"):
        build_serve_config({"mode": "node", "node_id": "n", "attachable": "maybe"}, {})


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("unix:///csi/csi.sock", "unix:///csi/csi.sock"),
        ("unix:/csi/csi.sock", "unix:///csi/csi.sock"),
        ("tcp://127.0.0.1:10000", "127.0.0.1:10000"),
        ("tcp://[::1]:10000", "[::1]:10000"),
    ],
)
def test_endpoints(text: str, address: str) -> None:
    assert parse_endpoint(text).grpc_address == address


@pytest.mark.parametrize(
    "text",
    [
        "",
        "csi.sock",
        "unix://relative",
        "unix:///a/../b",
        "tcp://host",
        "tcp://:1",
        "tcp://h:99999",
    ],
)
def test_bad_endpoints(text: str) -> None:
    with pytest.raises(EndpointError):
        parse_endpoint(text)


def test_token_file_and_ca_file(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(f"  {TOKEN}\n")
    ca = tmp_path / "ca.crt"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    env = {
        "OXIDE_HOST": "https://rack.example",
        "OXIDE_TOKEN_FILE": str(token_file),
        "OXIDE_PROJECT": "k8s",
        "OXIDE_CA_FILE": str(ca),
        "OXIDE_CSI_CONTROLLER_INSTANCE_ID": "none",
    }
    config = build_serve_config({"mode": "controller"}, env)
    assert config.oxide is not None
    assert config.oxide.credentials.token.reveal() == TOKEN
    assert config.oxide.credentials.token_file == token_file
    assert config.oxide.ca_file == ca
    assert TOKEN not in repr(config)
    # OXIDE_TOKEN wins over the file; a missing CA file or an empty token file is refused
    direct = resolve_credentials({**env, "OXIDE_TOKEN": "oxide-token-direct"})
    assert direct.token_file is None and direct.token.reveal() == "oxide-token-direct"
    with pytest.raises(ConfigError, match="OXIDE_CA_FILE"):
        build_serve_config({"mode": "controller"}, {**env, "OXIDE_CA_FILE": str(tmp_path / "x")})
    token_file.write_text("\n")
    with pytest.raises(ConfigError, match="OXIDE_TOKEN_FILE"):
        build_serve_config({"mode": "controller"}, env)


@pytest.mark.parametrize(
    ("flags", "env", "hot"),
    [
        ({}, {}, False),  # off by default
        ({"hot_attach": True}, {}, True),
        ({}, {"OXIDE_CSI_HOT_ATTACH": "true"}, True),
        ({}, {"OXIDE_CSI_HOT_ATTACH": "0"}, False),
        ({"hot_attach": True}, {"OXIDE_CSI_HOT_ATTACH": "false"}, True),  # the flag wins
    ],
)
def test_hot_attach_switch(flags: dict[str, object], env: dict[str, str], hot: bool) -> None:
    base = {"OXIDE_HOST": "https://r", "OXIDE_TOKEN": TOKEN, "OXIDE_PROJECT": "p"}
    base["OXIDE_CSI_CONTROLLER_INSTANCE_ID"] = "none"  # no DMI here; the guard is not under test
    config = build_serve_config({"mode": "controller", **flags}, {**base, **env})
    assert config.controller is not None and config.controller.hot_attach is hot
    assert config.controller.hot_attach_timeout == 60


def test_hot_attach_flags_on_the_command_line(plugin_env) -> None:
    env = {**plugin_env, "OXIDE_HOST": "https://r", "OXIDE_TOKEN": TOKEN, "OXIDE_PROJECT": "p"}
    env["OXIDE_CSI_HOT_ATTACH"] = "maybe"
    result = _run(["serve", "--mode", "controller", "--hot-attach-timeout", "5"], env)
    assert result.returncode == 2
    assert "OXIDE_CSI_HOT_ATTACH must be true or false" in result.stderr
    args = cli._parser().parse_args(["serve", "--hot-attach", "--hot-attach-timeout", "5"])
    assert args.hot_attach is True and args.hot_attach_timeout == "5"
