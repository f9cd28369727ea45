"""The plugin starts with exactly the command line and environment the chart renders.

A stand-in for kubelet: each volume the plugin container mounts becomes a temporary
directory, the rendered args and env are rewritten onto those directories, Secret and
downward-API references are resolved, and the image's console script is run with the result.
The controller's Kubernetes API is the test API server (a kubeconfig stands in for the pod's
service account).
Then the socket must appear in the directory the sidecars share, Identity must answer over it
(the controller's Probe reaches the simulated Oxide with the Secret's credentials), the
Prometheus endpoint the chart configures must serve, and SIGTERM must end it cleanly. A flag
the CLI does not know, an env name it does not read, or a socket outside the shared volume
fails here rather than in a cluster.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest

from kube_sim import KubeSim
from oxide_csi import DRIVER_NAME
from oxide_csi.csi_v1 import csi_pb2, csi_pb2_grpc
from oxide_sim import SimConfig, SimulatorServer
from tests.deploy.chart import NAMESPACE, Obj, containers, controller, node, render

TOKEN = "oxide-token-deploytest0123456789"
NODE_NAME = "instance-0"
POD_NAME = "oxide-csi-controller-7d9f8-x2x4q"
START_BOUND = 30.0  # seconds a start may take before the test gives up (not an assertion)


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(SimConfig(token=TOKEN, instances=1)) as server:
        yield server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Kubelet:
    """Turns one rendered container into an argv and environment for this machine."""

    def __init__(self, container: Obj, root: Path, secret: dict[str, str]) -> None:
        self.container = container
        self.paths: dict[str, Path] = {}
        for m in container.get("volumeMounts", []):
            local = root / m["name"]
            local.mkdir(parents=True, exist_ok=True)
            self.paths[m["mountPath"].rstrip("/")] = local
        self.secret = secret
        self.metrics_port = _free_port()

    def rewrite(self, text: str) -> str:
        prefix = "unix://" if text.startswith("unix://") else ""
        path = text.removeprefix(prefix)
        for mount in sorted(self.paths, key=len, reverse=True):
            if path == mount or path.startswith(mount + "/"):
                return prefix + str(self.paths[mount]) + path[len(mount) :]
        return text

    def argv(self, script: str) -> list[str]:
        args = self.container["args"]
        rewritten = []
        for arg in args:
            key, sep, value = arg.partition("=")
            rewritten.append(key + sep + self.rewrite(value) if sep else arg)
        return [script, *rewritten]

    def env(self, base: dict[str, str]) -> dict[str, str]:
        env = dict(base)
        for entry in self.container.get("env", []):
            name = entry["name"]
            if "value" in entry:
                value = self.rewrite(entry["value"])
            else:
                source = entry["valueFrom"]
                if "secretKeyRef" in source:
                    key = source["secretKeyRef"]["key"]
                    if key not in self.secret:
                        assert source["secretKeyRef"].get("optional"), f"{name}: {key}"
                        continue
                    value = self.secret[key]
                else:
                    value = {
                        "spec.nodeName": NODE_NAME,
                        "metadata.namespace": NAMESPACE,
                        "metadata.name": POD_NAME,
                    }[source["fieldRef"]["fieldPath"]]
            if name == "OXIDE_CSI_METRICS_ADDRESS":
                assert value.startswith("0.0.0.0:"), value
                value = f"127.0.0.1:{self.metrics_port}"
            env[name] = value
        return env

    def socket_path(self) -> Path:
        endpoint = next(a for a in self.container["args"] if a.startswith("--endpoint="))
        return Path(self.rewrite(endpoint.split("=", 1)[1]).removeprefix("unix://"))


def _run(
    kubelet: Kubelet, env: dict[str, str], log: Path
) -> tuple[grpc.Channel, subprocess.Popen[bytes]]:
    script = str(Path(sys.executable).parent / "oxide-csi")
    with log.open("wb") as out:
        proc = subprocess.Popen(
            kubelet.argv(script), env=kubelet.env(env), stdout=out, stderr=subprocess.STDOUT
        )
    sock = kubelet.socket_path()
    deadline = time.monotonic() + START_BOUND
    while not sock.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"plugin did not start (exit {proc.poll()}): {log.read_text()}")
        time.sleep(0.05)
    channel = grpc.insecure_channel(f"unix://{sock}")
    grpc.channel_ready_future(channel).result(timeout=START_BOUND)
    return channel, proc


def _stop(channel: grpc.Channel, proc: subprocess.Popen[bytes], log: Path) -> None:
    channel.close()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=START_BOUND)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0, log.read_text()


def _scrape(port: int) -> str:
    response = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert response.status_code == 200
    return response.text


def test_rendered_controller_starts_and_reaches_oxide(
    sim: SimulatorServer, short_tmp: Path, plugin_env: dict[str, str]
) -> None:
    deployment = controller(render())
    secret = {"host": sim.url, "token": TOKEN, "project": "default"}
    kubelet = Kubelet(containers(deployment)["oxide-csi"], short_tmp, secret)
    # The socket lies in the volume every sidecar mounts at /csi.
    assert kubelet.socket_path().parent == kubelet.paths["/csi"]
    log = short_tmp / "controller.log"
    with KubeSim(namespaces=(NAMESPACE,)) as kube:
        env = {**plugin_env, "KUBECONFIG": str(kube.write_kubeconfig(short_tmp / "kc"))}
        _check_controller(kubelet, env, log, kube)
    assert TOKEN not in log.read_text()


def _check_controller(kubelet: Kubelet, env: dict[str, str], log: Path, kube: KubeSim) -> None:
    channel, proc = _run(kubelet, env, log)
    try:
        identity = csi_pb2_grpc.IdentityStub(channel)
        assert identity.GetPluginInfo(csi_pb2.GetPluginInfoRequest(), timeout=5).name == DRIVER_NAME
        caps = identity.GetPluginCapabilities(csi_pb2.GetPluginCapabilitiesRequest(), timeout=5)
        kinds = [c.service.type for c in caps.capabilities]
        Service = csi_pb2.PluginCapability.Service
        assert kinds == [Service.VOLUME_ACCESSIBILITY_CONSTRAINTS, Service.CONTROLLER_SERVICE]
        assert identity.Probe(csi_pb2.ProbeRequest(), timeout=10).ready.value is True
        assert "oxide_csi_" in _scrape(kubelet.metrics_port)
        # Recovery (in the background) looks for attach records in the pod's own namespace.
        records = f"/api/v1/namespaces/{NAMESPACE}/configmaps"
        deadline = time.monotonic() + START_BOUND
        while records not in [r.path for r in kube.requests]:
            assert time.monotonic() < deadline, [r.path for r in kube.requests]
            time.sleep(0.05)
    finally:
        _stop(channel, proc, log)


def test_rendered_node_plugin_starts_with_the_node_name(
    short_tmp: Path, plugin_env: dict[str, str]
) -> None:
    values = {"node": {"metrics": {"enabled": True}, "nodeIdSource": "nodeName"}}
    daemonset = node(render(values))  # metrics: off by default; the node id: the UUID
    kubelet = Kubelet(containers(daemonset)["oxide-csi"], short_tmp, {})
    assert kubelet.socket_path().parent == kubelet.paths["/csi"]
    env = kubelet.env(plugin_env)
    assert env["KUBE_NODE_NAME"] == NODE_NAME
    assert not any(k in env for k in ("OXIDE_HOST", "OXIDE_TOKEN", "OXIDE_PROJECT"))
    log = short_tmp / "node.log"
    channel, proc = _run(kubelet, plugin_env, log)
    try:
        identity = csi_pb2_grpc.IdentityStub(channel)
        assert identity.GetPluginInfo(csi_pb2.GetPluginInfoRequest(), timeout=5).name == DRIVER_NAME
        caps = identity.GetPluginCapabilities(csi_pb2.GetPluginCapabilitiesRequest(), timeout=5)
        kinds = [c.service.type for c in caps.capabilities]
        assert kinds == [csi_pb2.PluginCapability.Service.VOLUME_ACCESSIBILITY_CONSTRAINTS]
        assert "oxide_csi_" in _scrape(kubelet.metrics_port)
    finally:
        _stop(channel, proc, log)
