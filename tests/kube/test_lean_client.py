"""The node's small Kubernetes client against the test API server over TLS: calls, errors,
watches, the configurations it reads, and that it loads none of lightkube's HTTP stack."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from kube_sim import KubeSim
from oxide_csi.config_common import ConfigError
from oxide_csi.kube.lean_client import (
    KubeConfigError,
    LeanApiError,
    LeanClient,
    api_target,
    from_kubeconfig,
    in_cluster,
)

NS = "oxide-csi"
LEASES = f"/apis/coordination.k8s.io/v1/namespaces/{NS}/leases"
CONFIGMAPS = f"/api/v1/namespaces/{NS}/configmaps"


@pytest.fixture
def secure() -> Iterator[KubeSim]:
    with KubeSim(tls=True, tokens=("lean-token",), namespaces=(NS,)) as server:
        yield server


def lease(name: str, version: str | None = None, holder: str = "node-a") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": NS}
    if version is not None:
        meta["resourceVersion"] = version
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": meta,
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 40},
    }


async def test_calls_and_errors_over_tls(secure: KubeSim, tmp_path: Path) -> None:
    config = secure.write_kubeconfig(tmp_path / "kc", namespace=NS, token="lean-token")
    client = LeanClient(from_kubeconfig(config))
    with pytest.raises(LeanApiError) as missing:
        await client.call("GET", f"{LEASES}/beat")
    assert missing.value.status == 404 and missing.value.reason == "NotFound"
    made = await client.call("POST", LEASES, lease("beat"))
    version = made["metadata"]["resourceVersion"]
    with pytest.raises(LeanApiError) as twice:
        await client.call("POST", LEASES, lease("beat"))
    assert twice.value.status == 409
    renewed = await client.call("PUT", f"{LEASES}/beat", lease("beat", version, "node-b"))
    assert renewed["metadata"]["resourceVersion"] != version
    with pytest.raises(LeanApiError) as stale:  # written on an old version: refused
        await client.call("PUT", f"{LEASES}/beat", lease("beat", version))
    assert stale.value.status == 409
    stored = secure.get("coordination.k8s.io/v1", "Lease", "beat", NS)
    assert stored is not None and stored["spec"]["holderIdentity"] == "node-b"


async def test_a_wrong_token_is_refused(secure: KubeSim, tmp_path: Path) -> None:
    config = secure.write_kubeconfig(tmp_path / "kc", namespace=NS, token="not-a-token")
    with pytest.raises(LeanApiError) as refused:
        await LeanClient(from_kubeconfig(config)).call("GET", f"{LEASES}/beat")
    assert refused.value.status == 401


async def test_an_untrusted_server_is_refused(secure: KubeSim, tmp_path: Path) -> None:
    config = json.loads(secure.write_kubeconfig(tmp_path / "kc", token="lean-token").read_text())
    del config["clusters"][0]["cluster"]["certificate-authority"]
    (tmp_path / "kc").write_text(json.dumps(config))
    with pytest.raises(OSError, match="CERTIFICATE_VERIFY_FAILED"):
        await LeanClient(from_kubeconfig(tmp_path / "kc")).call("GET", f"{LEASES}/beat")


async def test_a_watch_yields_the_changes_of_selected_objects(
    secure: KubeSim, tmp_path: Path
) -> None:
    config = secure.write_kubeconfig(tmp_path / "kc", namespace=NS, token="lean-token")
    client = LeanClient(from_kubeconfig(config))
    listed = await client.call("GET", f"{CONFIGMAPS}?labelSelector=for%3Da")
    assert listed["items"] == []
    version = listed["metadata"]["resourceVersion"]
    path = f"{CONFIGMAPS}?watch=1&labelSelector=for%3Da&resourceVersion={version}"
    seen: list[tuple[str, str]] = []

    async def watch() -> None:
        async for event in client.stream(path):
            seen.append((event["type"], event["object"]["metadata"]["name"]))
            if len(seen) == 2:
                return

    watching = asyncio.create_task(watch())
    for name, label in (("other", "b"), ("mine", "a"), ("gone", "a")):
        meta = {"name": name, "namespace": NS, "labels": {"for": label}}
        secure.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {}})
    await asyncio.wait_for(watching, 30)
    assert seen == [("ADDED", "mine"), ("ADDED", "gone")]


def test_kubeconfig_forms(tmp_path: Path, secure: KubeSim) -> None:
    json_config = secure.write_kubeconfig(tmp_path / "kc.json", token="lean-token")
    raw = json.loads(json_config.read_text())
    target = from_kubeconfig(json_config)
    assert (target.host, target.token, target.tls) == ("127.0.0.1", "lean-token", True)
    assert target.ca_file == secure.ca_file
    raw["users"][0]["user"] = {"tokenFile": "token"}
    (tmp_path / "token").write_text("from-a-file\n")
    (tmp_path / "kc.yaml").write_text(yaml.safe_dump(raw))  # kubectl writes YAML
    from_yaml = from_kubeconfig(tmp_path / "kc.yaml")
    assert from_yaml.bearer() == "from-a-file"
    raw["users"][0]["user"] = {"exec": {"command": "aws"}}
    (tmp_path / "kc.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(KubeConfigError, match="exec"):
        from_kubeconfig(tmp_path / "kc.yaml")
    raw["clusters"][0]["cluster"]["server"] = "ftp://127.0.0.1:1"
    (tmp_path / "kc.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(KubeConfigError, match="https"):
        from_kubeconfig(tmp_path / "kc.yaml")


def test_in_cluster(tmp_path: Path) -> None:
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    with pytest.raises(KubeConfigError, match="not in a pod"):
        in_cluster(env, tmp_path)
    (tmp_path / "token").write_text("rotated-1\n")
    target = in_cluster(env, tmp_path)
    assert (target.host, target.port, target.ca_file) == ("10.0.0.1", 443, str(tmp_path / "ca.crt"))
    (tmp_path / "token").write_text("rotated-2\n")  # the kubelet rotates it: read each time
    assert target.bearer() == "rotated-2"


def test_it_loads_no_http_library_and_no_lightkube() -> None:
    code = (
        "import sys, oxide_csi.kube.lean_client\n"
        "heavy = {'lightkube', 'httpx', 'httpx2', 'httpcore', 'httpcore2', 'anyio', 'yaml', "
        "'msgspec', 'h2'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_an_unusable_configuration_stops_the_start(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot load the Kubernetes configuration"):
        api_target(tmp_path / "missing")
    (tmp_path / "broken").write_text("{not: [yaml")
    with pytest.raises(ConfigError, match="broken"):
        api_target(tmp_path / "broken")
