"""The ``--metrics-address`` setting and the ``/metrics`` HTTP server on its own."""

from __future__ import annotations

import socket

import httpx
import pytest

from oxide_csi.config import MetricsAddress, build_serve_config, parse_metrics_address
from oxide_csi.config_common import ConfigError
from oxide_csi.metrics import MetricsServer, PluginMetrics
from oxide_csi.server.listener import ListenError

NODE_ARGS = {"mode": "node", "node_id": "node-1", "endpoint": "unix:///tmp/x.sock"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0.0.0.0:9809", MetricsAddress("0.0.0.0", 9809)),
        ("localhost:1", MetricsAddress("localhost", 1)),
        ("[::]:9810", MetricsAddress("::", 9810)),
        ("", None),
        (None, None),
    ],
)
def test_parse(raw: str | None, expected: MetricsAddress | None) -> None:
    assert parse_metrics_address(raw) == expected


@pytest.mark.parametrize("raw", ["9809", ":9809", "host:", "host:0", "host:70000", "host:http"])
def test_parse_rejects(raw: str) -> None:
    with pytest.raises(ConfigError, match="metrics address"):
        parse_metrics_address(raw)


def test_ipv6_address_prints_with_brackets() -> None:
    assert str(MetricsAddress("::", 9810)) == "[::]:9810"
    assert str(MetricsAddress("0.0.0.0", 9809)) == "0.0.0.0:9809"


def test_off_unless_configured_and_flag_beats_env() -> None:
    assert build_serve_config(NODE_ARGS, {}).metrics is None
    assert build_serve_config(NODE_ARGS, {"OXIDE_CSI_METRICS_ADDRESS": ""}).metrics is None
    from_env = build_serve_config(NODE_ARGS, {"OXIDE_CSI_METRICS_ADDRESS": "127.0.0.1:9810"})
    assert from_env.metrics == MetricsAddress("127.0.0.1", 9810)
    both = build_serve_config(
        {**NODE_ARGS, "metrics_address": "0.0.0.0:9000"},
        {"OXIDE_CSI_METRICS_ADDRESS": "127.0.0.1:9810"},
    )
    assert both.metrics == MetricsAddress("0.0.0.0", 9000)


def test_server_serves_its_registry_and_frees_the_port_on_close() -> None:
    metrics = PluginMetrics("node")
    metrics.on_call("NodeGetInfo", "OK", 0.001)
    address = MetricsAddress("127.0.0.1", free_port())
    server = MetricsServer(address, metrics.registry)
    try:
        body = httpx.get(f"http://{address}/metrics", timeout=5).text
    finally:
        server.close()
    assert 'oxide_csi_grpc_requests_total{code="OK",method="NodeGetInfo"} 1.0' in body
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://{address}/metrics", timeout=2)
    MetricsServer(address, metrics.registry).close()  # the port is free again


def test_busy_port_is_a_listen_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ListenError, match=f"cannot serve metrics on 127.0.0.1:{port}"):
            MetricsServer(MetricsAddress("127.0.0.1", port), PluginMetrics("node").registry)
