"""Controllers with the Kubernetes backend as real processes, one simulated Oxide and one test
Kubernetes API server (``kube_sim``) between them, and the checks the tests share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kube_sim import KubeSim
from oxide_csi import failpoints
from oxide_csi.csi_v1 import csi_pb2, csi_pb2_grpc
from oxide_sim import SimConfig, SimulatorServer
from tests.controller.conftest import mount_cap

OXIDE_TOKEN = "oxide-token-kubetests0123456789abcdef"
NAMESPACE = "oxide-csi"
ATTACHABLE = {"csi.oxide.computer/attachable": "true"}
#: Short Lease timings: renew every 0.5 s, lost after 2 s, taken over after 3 + 2 s.
LEASE_SECONDS = 3
OXIDE_CALL_SECONDS = 2


def sim_config(tmp: Path, **overrides: Any) -> SimConfig:
    """Quick stops and starts, two instances, unless ``overrides`` say otherwise."""
    settings: dict[str, Any] = {
        "token": OXIDE_TOKEN,
        "instances": 2,
        "stop_seconds": 0.1,
        "start_seconds": 0.1,
        "state_dir": tmp / "sim",
    }
    return SimConfig(**{**settings, **overrides})


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimulatorServer]:
    with SimulatorServer(sim_config(tmp_path)) as server:
        yield server


@pytest.fixture
def kube() -> Iterator[KubeSim]:
    with KubeSim(tokens=("kube-admin",), namespaces=(NAMESPACE,)) as server:
        yield server


def sim_instance(sim: SimulatorServer, name: str = "instance-0") -> dict[str, Any]:
    stats = httpx.get(f"{sim.url}/sim/stats", timeout=10).json()
    found: dict[str, Any] = stats["instances"][name]
    return found


def sim_disk(sim: SimulatorServer, disk_id: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {OXIDE_TOKEN}"}
    found: dict[str, Any] = httpx.get(
        f"{sim.url}/v1/disks/{disk_id}", headers=headers, timeout=10
    ).json()
    return found


def add_node(kube: KubeSim, sim: SimulatorServer, name: str = "instance-0", **labels: str) -> str:
    """Make a sim instance a Node of the cluster (attachable unless labels say otherwise)."""
    instance_id = str(sim_instance(sim, name)["id"])
    kube.add_node(
        f"node-{name}",
        provider_id=f"oxide://{instance_id}",
        labels=labels or ATTACHABLE,
    )
    return instance_id


def state_left(kube: KubeSim) -> list[dict[str, Any]]:
    """The attach records in Kubernetes (ConfigMaps the controller owns)."""
    return kube.list(
        "v1", "ConfigMap", NAMESPACE, label_selector="csi.oxide.computer/state=attach-record"
    )


def held_leases(kube: KubeSim) -> list[dict[str, Any]]:
    leases = kube.list("coordination.k8s.io/v1", "Lease", NAMESPACE)
    return [lease for lease in leases if lease["spec"].get("holderIdentity")]


class Controller:
    """Starts controller processes: with the Kubernetes backend when given the test API
    server, else the file backend. Each ``name`` is one replica with its own socket, state
    directory and API token (so ``kube.block`` cuts it off)."""

    def __init__(
        self,
        sim: SimulatorServer,
        kube: KubeSim | None,
        factory: Any,
        env: dict[str, str],
        tmp: Path,
        name: str = "a",
    ) -> None:
        self.endpoint = f"unix://{tmp / f'ctl-{name}.sock'}"
        self.token = f"kube-token-{name}"
        self.state_dir = tmp / f"state-{name}"
        self.args = [
            "serve",
            "--mode",
            "controller",
            "--endpoint",
            self.endpoint,
            "--state-dir",
            str(self.state_dir),
            "--attach-batch-window",
            "0.1",
            "--oxide-request-timeout",
            str(OXIDE_CALL_SECONDS),
        ]
        if kube is not None:
            kube.add_token(self.token)
            config = kube.write_kubeconfig(
                tmp / f"kubeconfig-{name}", namespace=NAMESPACE, token=self.token
            )
            self.args += [
                "--state-backend",
                "kubernetes",
                "--kubeconfig",
                str(config),
                "--lease-duration",
                str(LEASE_SECONDS),
            ]
        self.env = {
            **env,
            "OXIDE_HOST": sim.url,
            "OXIDE_TOKEN": OXIDE_TOKEN,
            "OXIDE_PROJECT": "default",
            "POD_NAMESPACE": NAMESPACE,
            "POD_NAME": f"controller-{name}",
        }
        self.factory = factory
        self.tmp = tmp

    def start(self, failpoint: str = "") -> tuple[Any, csi_pb2_grpc.ControllerStub]:
        env = {**self.env, failpoints.ENV: failpoint} if failpoint else self.env
        proc = self.factory(self.args, env, self.tmp)
        return proc, csi_pb2_grpc.ControllerStub(proc.wait_ready(self.endpoint))


def create_volume(
    stub: csi_pb2_grpc.ControllerStub, name: str, pvc: tuple[str, str] | None = None
) -> str:
    params = {}
    if pvc is not None:
        params = {
            "csi.storage.k8s.io/pvc/namespace": pvc[0],
            "csi.storage.k8s.io/pvc/name": pvc[1],
        }
    req = csi_pb2.CreateVolumeRequest(
        name=name, volume_capabilities=[mount_cap()], parameters=params
    )
    return str(stub.CreateVolume(req, timeout=30).volume.volume_id)


def publish_request(volume_id: str, node_id: str) -> csi_pb2.ControllerPublishVolumeRequest:
    return csi_pb2.ControllerPublishVolumeRequest(
        volume_id=volume_id, node_id=node_id, volume_capability=mount_cap()
    )
