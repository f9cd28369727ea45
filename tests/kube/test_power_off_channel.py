"""Graceful power-off through Kubernetes: heartbeat Leases and request ConfigMaps, as the chart
grants them.

The test API server gives the node plugin's and the controller's tokens exactly the rules the
chart renders with ``gracefulPowerOff.enabled`` for their ServiceAccounts. The node's agent runs
in this process and plays instance-0's guest (its power-off is the simulator's guest hook); the
controller's strategy asks it through its own client, against the simulated rack.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from lightkube import ApiError, AsyncClient
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap

from kube_sim import KubeSim
from oxide_csi.controller.attach.graceful import GracefulPowerOff
from oxide_csi.kube.attacher import CycleEvents
from oxide_csi.kube.client import kube_client
from oxide_csi.kube.events import EventRecorder
from oxide_csi.kube.nodes import NodeGate
from oxide_csi.kube.settings import KubeSettings
from oxide_csi.oxide import Instance, OxideClient
from oxide_csi.poweroff.agent import GuestAgent, read_boot_id
from oxide_csi.poweroff.kube import BOOT_ANNOTATION as BOOT
from oxide_csi.poweroff.kube import FOR_LABEL, KubeChannel
from oxide_csi.poweroff.messages import PowerOffRequest
from oxide_sim import SimulatorServer
from tests.controller.attach.conftest import client_config
from tests.deploy.chart import NAMESPACE, render
from tests.kube.harness import OXIDE_TOKEN, sim_config
from tests.plugin_process import wait_until

NODE_SA = f"{NAMESPACE}/oxide-csi-node"
CONTROLLER_SA = f"{NAMESPACE}/oxide-csi-controller"


ON = {"gracefulPowerOff": {"enabled": True}}


@pytest.fixture
def cluster() -> Iterator[KubeSim]:
    manifests = render(ON)
    with KubeSim(tokens=("kube-admin",), namespaces=(NAMESPACE,)) as server:
        for token, account in (("node-token", NODE_SA), ("controller-token", CONTROLLER_SA)):
            server.add_token(token)
            assert server.grant_from_manifests(token, manifests, account) > 0
        yield server


@pytest.fixture
def rack(tmp_path: Path) -> Iterator[SimulatorServer]:
    with SimulatorServer(sim_config(tmp_path)) as server:
        yield server


def _client(cluster: KubeSim, tmp: Path, token: str) -> AsyncClient:
    config = cluster.write_kubeconfig(tmp / f"kc-{token}", namespace=NAMESPACE, token=token)
    return kube_client(KubeSettings(NAMESPACE, config, identity=token))


async def _until(predicate: Callable[[], object], what: str) -> None:
    end = time.monotonic() + 10
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def node_agent(
    cluster: KubeSim, tmp: Path, instance_id: str, power_off: Callable[[], None]
) -> AsyncIterator[GuestAgent]:
    boot = tmp / "boot_id"
    if not boot.exists():
        boot.write_text(f"{uuid.uuid4()}\n")
    agent = GuestAgent(
        KubeChannel(_client(cluster, tmp, "node-token"), NAMESPACE, own=True),
        instance_id=instance_id,
        boot_id=lambda: read_boot_id(boot),
        power_off=power_off,
        period=0.5,
        duration=20,
    )
    close = agent.start()
    try:
        yield agent
    finally:
        await close()


async def test_a_guest_power_off_through_kubernetes(
    cluster: KubeSim, rack: SimulatorServer, tmp_path: Path
) -> None:
    """instance-0's node answers: a guest power-off, an Event on its Node. instance-1 has no
    node plugin: Oxide's hard stop at once, a Warning on its Node."""
    controller = _client(cluster, tmp_path, "controller-token")
    channel = KubeChannel(controller, NAMESPACE)
    recorder = EventRecorder(controller, "ctl")
    recorder.start()
    seen: list[tuple[str, str]] = []
    hook = f"{rack.url}/sim/instances/instance-0/guest-power-off"
    async with OxideClient(replace(client_config(rack.url), token=OXIDE_TOKEN)) as oxide:
        events = CycleEvents(NodeGate(controller), recorder, oxide)

        def tell(inst: Instance, how: str, why: str) -> None:
            seen.append((how, why))
            events.on_power_off(inst, how, why)

        strategy = GracefulPowerOff(channel, timeout=30, issuer="ctl", on_power_off=tell)
        inst, other = await oxide.get_instance("instance-0"), await oxide.get_instance("instance-1")
        for node in (inst, other):
            cluster.add_node(f"node-{node.name}", provider_id=f"oxide://{node.id}")

        def power_off() -> None:
            httpx.post(hook, timeout=10).raise_for_status()

        async with node_agent(cluster, tmp_path, inst.id, power_off) as agent:
            await _until(lambda: cluster.list("coordination.k8s.io/v1", "Lease", NAMESPACE), "beat")
            beat = await channel.heartbeat(inst.id)
            assert beat is not None and beat.started == pytest.approx(agent.started, abs=1e-6)
            stopped = await strategy(oxide, inst, deadline=time.monotonic() + 30, fence=lambda d: d)
            assert stopped.run_state == "stopped"
            stopped = await strategy(
                oxide, other, deadline=time.monotonic() + 30, fence=lambda d: d
            )
            assert stopped.run_state == "stopped"
        await recorder.close()
    assert seen == [("guest", ""), ("hard", "no-heartbeat")]
    stats = httpx.get(f"{rack.url}/sim/stats", timeout=10).json()["instances"]
    assert (stats["instance-0"]["guest_power_offs"], stats["instance-0"]["hard_stops"]) == (1, 0)
    assert (stats["instance-1"]["guest_power_offs"], stats["instance-1"]["hard_stops"]) == (0, 1)
    requests = cluster.list("v1", "ConfigMap", NAMESPACE, label_selector=FOR_LABEL)
    assert requests == [], "withdrawn after the cycle"
    about = {
        e["involvedObject"]["name"]: (e["type"], e["reason"], e["message"])
        for e in cluster.events()
    }
    assert about["node-instance-0"][:2] == ("Normal", "GuestPoweredOff")
    assert about["node-instance-1"][:2] == ("Warning", "HardPowerOff")
    assert "no-heartbeat" in about["node-instance-1"][2]
    await controller.close()


async def test_the_node_acts_only_on_its_own_current_requests(
    cluster: KubeSim, tmp_path: Path
) -> None:
    controller = _client(cluster, tmp_path, "controller-token")
    channel = KubeChannel(controller, NAMESPACE)
    calls: list[str] = []
    me, other = str(uuid.uuid4()), str(uuid.uuid4())
    async with node_agent(cluster, tmp_path, me, lambda: calls.append("off")) as agent:
        await _until(lambda: cluster.list("coordination.k8s.io/v1", "Lease", NAMESPACE), "beat")
        beat = await channel.heartbeat(me)
        assert beat is not None
        now = time.time()
        replay = PowerOffRequest(me, "run", "an-old-boot", beat.started, now, now + 60)
        await channel.send(replay)
        await _until(lambda: replay.id in agent.ignored, "the replay to be seen")
        assert "another boot" in agent.ignored[replay.id]
        # another node's request: this node's watch never even sees it
        await channel.send(PowerOffRequest(other, "run", beat.boot_id, beat.started, now, now + 60))
        good = PowerOffRequest(me, "run", beat.boot_id, beat.started, now, now + 60)
        await channel.send(good)  # replaces the replay: one request per instance
        await _until(lambda: calls == ["off"], "the power-off")
        assert len(agent.ignored) == 1
        await channel.withdraw(good)
        names = [
            c["metadata"]["name"]
            for c in cluster.list("v1", "ConfigMap", NAMESPACE, label_selector=FOR_LABEL)
        ]
        assert names == [f"oxide-csi-poweroff-{other}"]
        expired = PowerOffRequest(other, "run", "b", 0.0, now - 120, now - 60)
        await channel.send(expired)
        assert await channel.sweep(time.time()) == 1
    # a restarted plugin (new start) takes its heartbeat Lease over
    async with node_agent(cluster, tmp_path, me, lambda: calls.append("off")) as second:
        await _until(
            lambda: (b := _started(cluster, me)) is not None and abs(b - second.started) < 1e-3,
            "the new start in the heartbeat",
        )
    assert calls == ["off"]
    await controller.close()


def _started(cluster: KubeSim, instance_id: str) -> float | None:
    leases = cluster.list("coordination.k8s.io/v1", "Lease", NAMESPACE)
    for lease in leases:
        if lease["metadata"]["name"] == f"oxide-csi-node-{instance_id}":
            return float(lease["metadata"]["annotations"]["csi.oxide.computer/node-started"])
    return None


async def test_the_node_may_not_write_requests_or_state(cluster: KubeSim, tmp_path: Path) -> None:
    node = _client(cluster, tmp_path, "node-token")
    forged = ConfigMap(
        metadata=ObjectMeta(
            name="oxide-csi-poweroff-x", namespace=NAMESPACE, labels={FOR_LABEL: "x"}
        ),
        data={},
    )
    with pytest.raises(ApiError) as refused:
        await node.create(forged)
    assert refused.value.status.code == 403
    cluster.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "oxide-csi-attach-x", "namespace": NAMESPACE},
            "data": {},
        }
    )
    with pytest.raises(ApiError) as delete:  # nor remove the controller's state
        await node.delete(ConfigMap, "oxide-csi-attach-x", namespace=NAMESPACE)
    assert delete.value.status.code == 403
    await node.close()


def test_a_node_process_keeps_its_heartbeat_over_tls(
    plugin_factory: Any, plugin_env: dict[str, str], short_tmp: Path
) -> None:
    """The real ``serve --mode node`` with graceful power-off on: its heartbeat Lease reaches
    an API server that speaks TLS only (the node's OpenSSL gate opens for it), with the
    node's RBAC from the chart."""
    instance_id = str(uuid.uuid4())
    boot = short_tmp / "boot_id"
    boot.write_text("5d1e0a1c-0000-4000-8000-000000000001\n")
    kubelet = short_tmp / "kubelet"
    kubelet.mkdir()
    with KubeSim(tls=True, namespaces=(NAMESPACE,)) as secure:
        secure.add_token("node-token")
        secure.grant_from_manifests("node-token", render(ON), NODE_SA)
        config = secure.write_kubeconfig(short_tmp / "kc", namespace=NAMESPACE, token="node-token")
        endpoint = f"unix://{short_tmp}/node.sock"
        args = ["serve", "--mode", "node", "--node-id", instance_id, "--endpoint", endpoint]
        args += ["--kubelet-dir", str(kubelet), "--graceful-power-off"]
        args += ["--state-backend", "kubernetes", "--kubeconfig", str(config)]
        env = {**plugin_env, "POD_NAMESPACE": NAMESPACE, "OXIDE_CSI_BOOT_ID_FILE": str(boot)}
        plugin = plugin_factory(args, env, short_tmp)
        plugin.wait_ready(endpoint).close()
        wait_until(
            lambda: any(
                lease["metadata"]["annotations"].get(BOOT) == read_boot_id(boot)
                for lease in secure.list("coordination.k8s.io/v1", "Lease", NAMESPACE)
            ),
            "the heartbeat Lease",
        )
        plugin.terminate()
        assert plugin.wait() == 0, plugin.output()
