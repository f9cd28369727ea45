"""In-process clients of the test API server: one per simulated controller, each with its own
token (so ``kube.block`` cuts one off) and its own Lease identity."""

from __future__ import annotations

from pathlib import Path

from lightkube import AsyncClient

from kube_sim import KubeSim
from oxide_csi.kube.client import kube_client
from oxide_csi.kube.settings import KubeSettings
from tests.kube.harness import NAMESPACE


def controller_settings(
    kube: KubeSim, tmp: Path, name: str, *, lease_seconds: int = 3, oxide_call: float = 1.0
) -> KubeSettings:
    token = f"inproc-{name}"
    kube.add_token(token)
    config = kube.write_kubeconfig(tmp / f"kc-{name}", namespace=NAMESPACE, token=token)
    return KubeSettings(
        namespace=NAMESPACE,
        kubeconfig=config,
        identity=f"ctl-{name}",
        lease_seconds=lease_seconds,
        oxide_call_seconds=oxide_call,
    )


def client_for(settings: KubeSettings, timeout: float = 10.0) -> AsyncClient:
    return kube_client(settings, timeout=timeout)
