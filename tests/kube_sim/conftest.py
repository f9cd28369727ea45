"""Fixtures: a running kube_sim with two controllers' tokens, and lightkube clients for it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from lightkube import AsyncClient, KubeConfig

from kube_sim import KubeSim

NAMESPACE = "oxide-csi"
TOKENS = ("token-a", "token-b")


@pytest.fixture
def sim() -> Iterator[KubeSim]:
    with KubeSim(tokens=TOKENS, namespaces=[NAMESPACE]) as server:
        yield server


@pytest.fixture
def kubeconfig(sim: KubeSim, tmp_path: Path) -> KubeConfig:
    return KubeConfig.from_file(
        sim.write_kubeconfig(tmp_path / "kubeconfig", namespace=NAMESPACE, token=TOKENS[0])
    )


@pytest.fixture
async def client(kubeconfig: KubeConfig) -> AsyncIterator[AsyncClient]:
    c = AsyncClient(config=kubeconfig)
    yield c
    await c.close()


@pytest.fixture
def http(sim: KubeSim) -> Iterator[httpx.Client]:
    """Raw HTTP as controller A, for what lightkube hides (status codes, bodies, headers)."""
    with httpx.Client(
        base_url=sim.url, headers={"authorization": f"Bearer {TOKENS[0]}"}, timeout=10
    ) as c:
        yield c


def cm_path(name: str = "", namespace: str = NAMESPACE) -> str:
    base = f"/api/v1/namespaces/{namespace}/configmaps"
    return f"{base}/{name}" if name else base


def lease_path(name: str = "", namespace: str = NAMESPACE) -> str:
    base = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
    return f"{base}/{name}" if name else base
