"""``oxide-csi call``: any CSI RPC by name against a live socket, JSON in and JSON out, the
status code and a non-zero exit on failure, ``--list``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from oxide_csi import DRIVER_NAME, __version__
from oxide_csi.tools import call, target
from tests.tools.conftest import Dev, clean_env, run_cli

GIB = 1 << 30


def test_get_plugin_info_prints_json(dev: Dev) -> None:
    result = run_cli("call", "Identity.GetPluginInfo", "--endpoint", dev.endpoint)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"name": DRIVER_NAME, "vendor_version": __version__}


def test_json_both_ways_through_a_volume_lifecycle(dev: Dev) -> None:
    request = {
        "name": "call-json-both-ways",
        "capacity_range": {"required_bytes": GIB},
        "volume_capabilities": [
            {"mount": {"fs_type": "ext4"}, "access_mode": {"mode": "SINGLE_NODE_WRITER"}}
        ],
    }
    created = run_cli(
        "call", "Controller.CreateVolume", json.dumps(request), "--endpoint", dev.endpoint
    )
    assert created.returncode == 0, created.stderr
    volume = json.loads(created.stdout)["volume"]
    assert volume["capacity_bytes"] == str(GIB)  # int64 as a string: protobuf's JSON mapping
    volume_id = volume["volume_id"]
    assert "call-json-both-ways" in str(
        dev.oxide(f"/v1/disks/{volume_id}", by_id=True)["description"]
    )

    # from stdin, in lowerCamelCase (the mapping's other spelling), and without --endpoint:
    # $CSI_ENDPOINT names the socket, as `source STATE/oxide.env` sets it
    env = {**clean_env(), "CSI_ENDPOINT": dev.endpoint}
    got = run_cli(
        "call", "Controller.ControllerGetVolume", env=env, stdin=json.dumps({"volumeId": volume_id})
    )
    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["volume"]["volume_id"] == volume_id

    deleted = run_cli(
        "call",
        "csi.v1.Controller.DeleteVolume",
        "-",
        env=env,
        stdin=f'{{"volume_id": "{volume_id}"}}',
    )
    assert (deleted.returncode, deleted.stdout.strip()) == (0, "{}"), deleted.stderr
    listed = run_cli("call", "/csi.v1.Controller/ListVolumes", '{"max_entries": 10}', env=env)
    assert listed.returncode == 0, listed.stderr
    entries = json.loads(listed.stdout).get("entries", [])
    assert volume_id not in [e["volume"]["volume_id"] for e in entries]


def test_refused_request_prints_the_status_code_and_exits_1(dev: Dev) -> None:
    result = run_cli("call", "Controller.CreateVolume", "{}", "--endpoint", dev.endpoint)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "INVALID_ARGUMENT (code 3): name is required" in result.stderr


def test_unreachable_plugin_is_unavailable(short_tmp: Path) -> None:
    result = run_cli(
        "call", "Identity.Probe", "--endpoint", f"unix://{short_tmp}/none.sock", "--timeout", "5"
    )
    assert result.returncode == 1
    assert "UNAVAILABLE (code 14)" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Node.NodeGetInfo", '{"bogus": 1}'], 'has no field named "bogus"'),
        (["Node.NodeGetInfo", "not json"], "not a valid NodeGetInfoRequest"),
        (["Controller.CreateVolum"], "did you mean Controller.CreateVolume"),
        ([], "name a method"),
        (["Identity.Probe", "--endpoint", "http://x"], "endpoint must start with unix://"),
    ],
)
def test_usage_errors_exit_2_before_calling(args: list[str], message: str) -> None:
    result = run_cli("call", *args, "--timeout", "5")
    assert result.returncode == 2
    assert message in result.stderr


def test_list_names_every_method_without_a_plugin() -> None:
    result = run_cli("call", "--list")
    assert result.returncode == 0, result.stderr
    names = result.stdout.split()
    assert names == list(call.methods())
    for name in ("Identity.GetPluginInfo", "Controller.CreateVolume", "Node.NodeStageVolume"):
        assert name in names


def test_endpoint_search_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    dev_sock, chart_sock = tmp_path / "dev.sock", tmp_path / "chart.sock"
    monkeypatch.setattr(target, "DEFAULT_DEV_ENDPOINT", f"unix://{dev_sock}")
    monkeypatch.setattr(target, "DEFAULT_ENDPOINT", f"unix://{chart_sock}")
    env = {"CSI_ENDPOINT": "unix:///env.sock"}
    dev = {"CSI_ENDPOINT": "unix:///dev-file.sock"}
    assert target.resolve_endpoint("unix:///flag.sock", env, dev) == "unix:///flag.sock"
    assert target.resolve_endpoint(None, env, dev) == "unix:///env.sock"
    assert target.resolve_endpoint(None, {}, dev) == "unix:///dev-file.sock"
    assert target.resolve_endpoint(None, {}, {}) == f"unix://{dev_sock}"  # nothing exists
    chart_sock.touch()
    assert target.resolve_endpoint(None, {}, {}) == f"unix://{chart_sock}"  # in a plugin pod
    dev_sock.touch()
    assert target.resolve_endpoint(None, {}, {}) == f"unix://{dev_sock}"


def test_describe_shows_a_requests_fields_without_a_plugin() -> None:
    result = run_cli("call", "Node.NodeStageVolume", "--describe")
    assert result.returncode == 0, result.stderr
    shape = json.loads(result.stdout)
    assert shape["staging_target_path"] == "string"
    assert shape["publish_context"] == {"string": "string"}  # a map
    assert shape["volume_capability"]["mount"]["mount_flags"] == ["string"]  # repeated
    assert "SINGLE_NODE_WRITER" in shape["volume_capability"]["access_mode"]["mode"].split(" | ")
    create = call.skeleton(call.methods()["Controller.CreateVolume"].input_type)
    assert create["capacity_range"] == {
        "required_bytes": "int64 (as a string)",
        "limit_bytes": "int64 (as a string)",
    }
    for method in call.methods().values():  # every request and response has a shape
        assert isinstance(call.skeleton(method.input_type), dict)
        assert isinstance(call.skeleton(method.output_type), dict)
