"""The console script leaves OpenSSL out of a node plugin, and lets it back in when needed."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from oxide_csi.csi_v1 import csi_pb2, csi_pb2_grpc
from oxide_csi.ssl_gate import serves_node_only, speaks_tls


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        (["serve", "--mode", "node"], {}, True),
        (["serve", "--mode=node", "--node-id", "n"], {}, True),
        (["serve"], {"CSI_MODE": "node"}, True),
        (["serve", "--mode", "controller"], {"CSI_MODE": "node"}, False),  # the flag wins
        (["serve", "--mode", "node", "--mode", "all"], {}, False),  # the last flag wins
        (["serve"], {}, False),  # default: all
        (["serve", "--mode"], {"CSI_MODE": "controller"}, False),
        (["dev", "--mode", "node"], {}, False),
        (["simulator"], {"CSI_MODE": "node"}, False),
        ([], {"CSI_MODE": "node"}, False),
    ],
)
def test_node_only_is_read_as_argparse_reads_it(
    argv: list[str], env: dict[str, str], expected: bool
) -> None:
    assert serves_node_only(argv, env) is expected


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        (["serve", "--mode", "node"], {}, False),
        (["serve", "--graceful-power-off", "--state-backend", "kubernetes"], {}, True),
        (["serve", "--graceful-power-off", "--state-backend=kubernetes"], {}, True),
        (["serve", "--graceful-power-off"], {"OXIDE_CSI_STATE_BACKEND": "kubernetes"}, True),
        (["serve", "--graceful-power-off"], {}, False),  # files: no TLS
        (["serve", "--state-backend", "kubernetes"], {}, False),  # no heartbeat
        (
            ["serve", "--state-backend", "kubernetes"],
            {"OXIDE_CSI_GRACEFUL_POWER_OFF": "true"},
            True,
        ),
        (
            ["serve", "--state-backend", "kubernetes"],
            {"OXIDE_CSI_GRACEFUL_POWER_OFF": "false"},
            False,
        ),
    ],
)
def test_a_node_with_graceful_power_off_keeps_tls(
    argv: list[str], env: dict[str, str], expected: bool
) -> None:
    assert speaks_tls(argv, env) is expected


def _loaded_ssl(pid: int) -> bool:
    """Whether the process has mapped CPython's ``_ssl`` extension (and OpenSSL with it)."""
    return "/_ssl." in Path(f"/proc/{pid}/maps").read_text()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _node_args(tmp: Path, endpoint: str) -> list[str]:
    kubelet = tmp / "kubelet"
    kubelet.mkdir(exist_ok=True)
    args = ["serve", "--mode", "node", "--node-id", "n1", "--endpoint", endpoint]
    return [*args, "--kubelet-dir", str(kubelet)]


def test_node_plugin_runs_without_ssl(plugin_factory, plugin_env, short_tmp: Path) -> None:
    endpoint = f"unix://{short_tmp}/n.sock"
    plugin = plugin_factory(_node_args(short_tmp, endpoint), plugin_env, short_tmp)
    node = csi_pb2_grpc.NodeStub(plugin.wait_ready(endpoint))
    assert node.NodeGetInfo(csi_pb2.NodeGetInfoRequest(), timeout=5).node_id == "n1"
    assert not _loaded_ssl(plugin.proc.pid)


def test_node_plugin_with_metrics_loads_ssl_and_serves_them(
    plugin_factory, plugin_env, short_tmp: Path
) -> None:
    endpoint = f"unix://{short_tmp}/m.sock"
    port = _free_port()
    args = [*_node_args(short_tmp, endpoint), "--metrics-address", f"127.0.0.1:{port}"]
    plugin = plugin_factory(args, plugin_env, short_tmp)
    plugin.wait_ready(endpoint)
    assert "oxide_csi_build_info" in httpx.get(f"http://127.0.0.1:{port}/metrics").text
    assert _loaded_ssl(plugin.proc.pid)  # prometheus_client imports it: the mark was lifted


def test_controller_keeps_ssl(plugin_factory, plugin_env, short_tmp: Path) -> None:
    """Controllers speak HTTPS to the rack; only ``serve`` in node mode goes without."""
    endpoint = f"unix://{short_tmp}/c.sock"
    plugin = plugin_factory(
        ["serve", "--mode", "controller", "--endpoint", endpoint],
        {
            **plugin_env,
            "OXIDE_HOST": "https://rack.invalid",
            "OXIDE_TOKEN": "t" * 20,
            "OXIDE_PROJECT": "default",
        },
        short_tmp,
    )
    plugin.wait_ready(endpoint)
    assert _loaded_ssl(plugin.proc.pid)
