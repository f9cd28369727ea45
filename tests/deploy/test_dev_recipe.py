"""The README's recipe for ``oxide-csi dev`` beside a real kubelet: its manifests are valid
Kubernetes objects, use the socket and sidecar versions the rest of the project uses, and the
README names every file and flag of it."""

from __future__ import annotations

import re
from typing import Any

import kubernetes_validate
import pytest
import yaml

from oxide_csi import DRIVER_NAME
from tests.deploy.chart import CHART_DIR, REPO, render

DEV = REPO / "deploy" / "dev"
FILES = ("kubelet-sidecars.yaml", "example-claim.yaml")
SOCKET = "/var/lib/kubelet/plugins/csi.oxide.computer/csi.sock"
K8S_VERSIONS = ("1.34.0", kubernetes_validate.latest_version())


def _objects(name: str) -> list[dict[str, Any]]:
    return [o for o in yaml.safe_load_all((DEV / name).read_text()) if o]


def _sidecars() -> dict[str, dict[str, Any]]:
    (pod,) = [o for o in _objects("kubelet-sidecars.yaml") if o["kind"] == "Pod"]
    return {c["name"]: c for c in pod["spec"]["containers"]}


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("name", FILES)
def test_manifests_are_valid(name: str, version: str) -> None:
    for obj in _objects(name):
        kubernetes_validate.validate(obj, version, strict=True)


def test_same_socket_driver_and_sidecars_as_the_chart() -> None:
    objects = _objects("kubelet-sidecars.yaml")
    (driver,) = [o for o in objects if o["kind"] == "CSIDriver"]
    (charted,) = [o for o in render() if o["kind"] == "CSIDriver"]
    assert driver["metadata"]["name"] == DRIVER_NAME
    assert driver["spec"] == charted["spec"]
    (storage_class,) = [o for o in objects if o["kind"] == "StorageClass"]
    assert storage_class["provisioner"] == DRIVER_NAME
    (pod,) = [o for o in objects if o["kind"] == "Pod"]
    volumes = {v["name"]: v["hostPath"]["path"] for v in pod["spec"]["volumes"]}
    assert volumes["plugin-dir"] + "/csi.sock" == SOCKET
    sidecars = _sidecars()
    registrar = sidecars["node-driver-registrar"]["args"]
    assert f"--kubelet-registration-path={SOCKET}" in registrar
    for container in sidecars.values():
        assert "--csi-address=/csi/csi.sock" in container["args"]
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())["sidecars"]
    for name, key in (
        ("node-driver-registrar", "nodeDriverRegistrar"),
        ("csi-provisioner", "provisioner"),
        ("csi-attacher", "attacher"),
    ):
        image = values[key]["image"]
        assert sidecars[name]["image"] == f"{image['repository']}:{image['tag']}"


def test_readme_names_every_command_file_and_flag() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme.split("### Beside a real kubelet", 1)[1].split("\n### ", 1)[0]
    command = " ".join(section.replace("\\\n", " ").split())
    assert re.search(
        rf"oxide-csi dev --hotplug --kubelet-dir /var/lib/kubelet --endpoint unix://{SOCKET}",
        command,
    )
    for name in FILES:
        assert f"kubectl apply -f deploy/dev/{name}" in section
        assert f"kubectl delete -f deploy/dev/{name}" in section
    for container in _sidecars().values():
        for arg in container["args"]:
            if not arg.startswith("--v="):
                assert arg in command, arg
