"""The node plugin with graceful power-off through Kubernetes, as the chart runs it: its
heartbeat and watch reach an API server over TLS, and it loads none of lightkube's HTTP stack
(what keeps it within its memory budget, ``bench/node_memory.py``)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest

from kube_sim import KubeSim
from oxide_csi.poweroff.names import HEARTBEAT_PREFIX
from tests.plugin_process import wait_until
from tests.test_layers import _loaded_modules

NAMESPACE = "oxide-csi"
HEAVY = {"lightkube", "httpx", "httpx2", "httpcore", "httpcore2", "anyio", "h2", "msgspec", "yaml"}


def test_a_node_with_graceful_power_off_loads_no_lightkube(
    plugin_factory: Any, plugin_env: dict[str, str], short_tmp: Path
) -> None:
    instance_id = str(uuid.uuid4())
    boot = short_tmp / "boot_id"
    boot.write_text(f"{uuid.uuid4()}\n")
    kubelet = short_tmp / "kubelet"
    kubelet.mkdir()
    with KubeSim(tls=True, tokens=("node-token",), namespaces=(NAMESPACE,)) as secure:
        config = secure.write_kubeconfig(short_tmp / "kc", namespace=NAMESPACE, token="node-token")
        endpoint = f"unix://{short_tmp}/node.sock"
        args = ["serve", "--mode", "node", "--node-id", instance_id, "--endpoint", endpoint]
        args += ["--kubelet-dir", str(kubelet), "--graceful-power-off"]
        args += ["--state-backend", "kubernetes", "--kubeconfig", str(config)]
        env = {**plugin_env, "POD_NAMESPACE": NAMESPACE, "OXIDE_CSI_BOOT_ID_FILE": str(boot)}
        env["PYTHONPROFILEIMPORTTIME"] = "1"
        plugin = plugin_factory(args, env, short_tmp)
        plugin.wait_ready(endpoint).close()
        name = HEARTBEAT_PREFIX + instance_id
        wait_until(
            lambda: secure.get("coordination.k8s.io/v1", "Lease", name, NAMESPACE) is not None,
            "the heartbeat Lease",
        )
        wait_until(lambda: any("watch=" in r.query for r in secure.requests), "the watch")
        plugin.terminate()
        assert plugin.wait() == 0, plugin.output()
    loaded = {m.split(".")[0] for m in _loaded_modules(plugin.output())}
    assert "_ssl" in loaded  # TLS to the API server
    assert sorted(loaded & HEAVY) == []


async def test_the_watch_is_reopened_where_it_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API server ends every watch after its timeoutSeconds; the node opens the next one
    from the last version it saw, so a request sent in between is not lost, and one it saw
    before is not seen again."""
    from oxide_csi.kube.client import kube_client
    from oxide_csi.kube.lean_client import LeanClient, from_kubeconfig
    from oxide_csi.kube.settings import KubeSettings
    from oxide_csi.poweroff import node_kube
    from oxide_csi.poweroff.kube import KubeChannel
    from oxide_csi.poweroff.messages import PowerOffRequest

    monkeypatch.setattr(node_kube, "WATCH_SECONDS", 1)
    with KubeSim(tls=True, tokens=("t",), namespaces=(NAMESPACE,)) as secure:
        config = secure.write_kubeconfig(tmp_path / "kc", namespace=NAMESPACE, token="t")
        node = node_kube.LeanNodeChannel(LeanClient(from_kubeconfig(config)), NAMESPACE)
        controller = kube_client(KubeSettings(NAMESPACE, config, identity="ctl"))
        sender = KubeChannel(controller, NAMESPACE)

        def request(n: int) -> PowerOffRequest:
            return PowerOffRequest("i-1", f"run-{n}", "boot", 1.0, 2.0, 3.0, id=f"r{n}")

        seen: list[str] = []

        def watches() -> int:
            return sum("watch=" in r.query for r in secure.requests)

        async def read() -> None:
            async for got in node.requests("i-1"):
                seen.append(got.id)
                if len(seen) == 2:
                    return

        reading = asyncio.create_task(read())
        await sender.send(request(1))
        await asyncio.to_thread(wait_until, lambda: seen == ["r1"], "the first request")
        first = watches()
        await asyncio.to_thread(wait_until, lambda: watches() > first, "a reopened watch")
        await sender.send(request(2))
        await asyncio.wait_for(reading, 30)
        assert seen == ["r1", "r2"]
        await controller.close()
