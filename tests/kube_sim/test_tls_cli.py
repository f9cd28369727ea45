"""TLS with the CA file a kubeconfig names, and the command line in a process of its own."""

from __future__ import annotations

import json
import signal
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from lightkube import AsyncClient, KubeConfig
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap

from kube_sim import KubeSim


def test_tls_verifies_with_the_ca_file_only() -> None:
    with KubeSim(tls=True) as sim:
        assert sim.url.startswith("https://127.0.0.1:") and sim.ca_file
        trusted = ssl.create_default_context(cafile=sim.ca_file)
        assert httpx.get(f"{sim.url}/version", verify=trusted).status_code == 200
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{sim.url}/version", verify=ssl.create_default_context())
        localhost = sim.url.replace("127.0.0.1", "localhost")
        assert httpx.get(f"{localhost}/version", verify=trusted).status_code == 200


async def test_lightkube_over_tls_from_a_kubeconfig(tmp_path: Path) -> None:
    with KubeSim(tls=True, tokens=["t"]) as sim:
        path = sim.write_kubeconfig(tmp_path / "kc", namespace="plugin", token="t")
        assert json.loads(path.read_text())["clusters"][0]["cluster"]["certificate-authority"]
        client = AsyncClient(config=KubeConfig.from_file(path))
        created: Any = await client.create(ConfigMap(metadata=ObjectMeta(name="x")))
        assert created.metadata.namespace == "plugin"
        await client.close()


async def test_cli_serves_until_sigterm(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc"
    proc = subprocess.Popen(
        [sys.executable, "-m", "kube_sim", "--listen", "127.0.0.1:0", "--tls", "--token", "t",
         "--namespace", "plugin", "--kubeconfig-out", str(kubeconfig)],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("https://127.0.0.1:")
        config = KubeConfig.from_file(kubeconfig)
        assert config.get().cluster.server == url  # type: ignore[union-attr]
        client = AsyncClient(config=config)
        await client.create(ConfigMap(metadata=ObjectMeta(name="x")))
        got: Any = await client.get(ConfigMap, "x")
        assert got.metadata.namespace == "plugin"
        await client.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_tls_restart_keeps_the_ca() -> None:
    sim = KubeSim(tls=True).start()
    ca_file = sim.ca_file
    assert ca_file is not None
    sim.stop()
    sim.start()
    try:
        assert sim.ca_file == ca_file
        trusted = ssl.create_default_context(cafile=ca_file)
        assert httpx.get(f"{sim.url}/version", verify=trusted).status_code == 200
    finally:
        sim.stop()
