"""Render the Helm chart offline with the real Helm v4 engine and look into the result.

helm-python-sdk binds Helm's Go library (shipped inside the wheel), so these tests need neither
a helm binary nor a cluster nor the network. Rendered manifests are parsed with PyYAML into
plain dicts; the helpers below only find things, the tests decide what is right.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml
from helm_python import _native

REPO = Path(__file__).resolve().parents[2]
CHART_DIR = REPO / "deploy" / "helm" / "oxide-csi"
RELEASE = "oxide-csi"
NAMESPACE = "kube-system"
DRIVER = "csi.oxide.computer"
SOCKET = "/csi/csi.sock"

Obj = dict[str, Any]

#: Values that change every knob the templates branch on (used by several test files).
EVERYTHING: Obj = {
    "image": {"repository": "registry.example.com/oxide-csi", "tag": "9.9.9"},
    "imagePullSecrets": [{"name": "regcred"}],
    "oxide": {
        "host": "https://oxide.example.com",
        "token": "oxide-token-value",
        "project": "k8s",
        "apiVersion": "2026072800.0.0",
        "maxDisksPerInstance": 12,
    },
    "logLevel": "debug",
    "logFormat": "console",
    "controller": {
        "replicas": 2,
        "attachBatchWindow": 5,
        "stateVolume": {"persistentVolumeClaim": {"claimName": "oxide-csi-state"}},
        "podDisruptionBudget": {"enabled": False},
        "env": [{"name": "EXTRA", "value": "1"}],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["cp"]}]}
                    ]
                }
            }
        },
        "metrics": {"enabled": False},
    },
    "node": {
        "kubeletDir": "/var/snap/microk8s/common/var/lib/kubelet/",
        "nodeIdSource": "instanceUUID",
        "podLabels": {"team": "storage"},
        "metrics": {"enabled": True},
    },
    "sidecars": {"attacher": {"timeout": "20m", "extraArgs": ["--worker-threads=4"]}},
    "storageClasses": [
        {
            "name": "oxide-xfs",
            "default": True,
            "reclaimPolicy": "Retain",
            "volumeBindingMode": "Immediate",
            "parameters": {"fsType": "xfs", "blockSize": 512},
            "mountOptions": ["noatime"],
        },
        {"name": "oxide-plain"},
    ],
    "snapshots": {"enabled": False},
    "commonLabels": {"cost-center": "storage"},
}

#: Credentials by reference, snapshots on with two classes, no metrics Service.
EXISTING_SECRET: Obj = {
    "oxide": {"existingSecret": "my-oxide"},
    "controller": {"serviceAccount": {"create": False, "name": "pre-made"}},
    "snapshots": {
        "enabled": True,
        "volumeSnapshotClasses": [
            {"name": "oxide-snap", "default": True},
            {"name": "oxide-keep", "deletionPolicy": "Retain"},
        ],
    },
    "metricsService": {"enabled": False},
}

VALUE_SETS: dict[str, Obj] = {"defaults": {}, "everything": EVERYTHING, "existing": EXISTING_SECRET}


def _everything_on() -> Obj:
    values = copy.deepcopy(EVERYTHING)
    values["controller"]["metrics"] = {"enabled": True}
    values["controller"]["podDisruptionBudget"] = {"enabled": True}
    values["snapshots"] = EXISTING_SECRET["snapshots"]
    values["gracefulPowerOff"] = {"enabled": True, "stopTimeout": 90, "command": "poweroff -f"}
    return values


#: Every optional object and container on: metrics (both), PDB, snapshots, Secret, graceful
#: power-off.
EVERYTHING_ON: Obj = _everything_on()

#: What ``--api-versions`` adds for a cluster that has the external-snapshotter's CRDs.
SNAPSHOT_API = ("snapshot.storage.k8s.io/v1/VolumeSnapshotClass",)

#: A long release name (40 characters); Helm allows 53. Names built from it must still fit.
LONG_RELEASE = "platform-team-storage-oxide-disks-prod01"


@dataclass(frozen=True)
class RenderCase:
    """One ``helm template`` run: values, the cluster's extra APIs, the release name."""

    values: Obj
    api_versions: tuple[str, ...] = ()
    release: str = RELEASE

    def objects(self) -> list[Obj]:
        return render(self.values, api_versions=self.api_versions, release=self.release)


#: The runs the name rules and the schemas are checked on.
RENDER_CASES: dict[str, RenderCase] = {
    "defaults": RenderCase({}),
    "defaults, snapshot API served": RenderCase({}, SNAPSHOT_API),
    "everything on": RenderCase(EVERYTHING_ON, SNAPSHOT_API),
    "snapshots forced on, no snapshot API": RenderCase(EXISTING_SECRET),
    "long release name, everything on": RenderCase(EVERYTHING_ON, SNAPSHOT_API, LONG_RELEASE),
}


def render_files(
    values: Obj | None = None,
    *,
    api_versions: tuple[str, ...] = (),
    release: str = RELEASE,
    is_upgrade: bool = False,
) -> dict[str, str]:
    """Template path -> rendered text, as ``helm template`` would produce it.

    ``api_versions`` are what ``helm template --api-versions`` adds to the built-in
    ``.Capabilities.APIVersions`` (a cluster's extra APIs, such as the snapshot CRDs).
    helm-python-sdk's ``Chart.render`` does not expose that option yet, but its engine takes it
    (``api_versions`` in the render options), so the call goes to the engine directly.
    """
    options = {
        "name": release,
        "namespace": NAMESPACE,
        "is_install": not is_upgrade,
        "is_upgrade": is_upgrade,
        "api_versions": list(api_versions),
    }
    with helm.Chart.load(CHART_DIR) as chart:
        rendered = _native.call_string(
            "helm_render", chart._raw(), json.dumps(values or {}), json.dumps(options)
        )
    files: dict[str, str] = json.loads(rendered)
    return files


def render(
    values: Obj | None = None,
    *,
    api_versions: tuple[str, ...] = (),
    release: str = RELEASE,
    is_upgrade: bool = False,
) -> list[Obj]:
    """Every Kubernetes object the chart renders for ``values`` (NOTES.txt excluded)."""
    objects: list[Obj] = []
    files = render_files(values, api_versions=api_versions, release=release, is_upgrade=is_upgrade)
    for path, text in sorted(files.items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                objects.append(doc)
    return objects


def find(objects: list[Obj], kind: str, name: str | None = None) -> Obj:
    matches = [o for o in objects if o["kind"] == kind and name in (None, o["metadata"]["name"])]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


def all_of(objects: list[Obj], kind: str) -> list[Obj]:
    return [o for o in objects if o["kind"] == kind]


def pod_spec(workload: Obj) -> Obj:
    spec: Obj = workload["spec"]["template"]["spec"]
    return spec


def containers(workload: Obj) -> dict[str, Obj]:
    return {c["name"]: c for c in pod_spec(workload)["containers"]}


def controller(objects: list[Obj]) -> Obj:
    return find(objects, "Deployment", f"{RELEASE}-controller")


def node(objects: list[Obj]) -> Obj:
    return find(objects, "DaemonSet", f"{RELEASE}-node")


def args_dict(container: Obj) -> dict[str, str]:
    """``--flag=value`` arguments as a mapping (flags without a value map to "")."""
    result: dict[str, str] = {}
    for arg in container.get("args", []):
        if arg.startswith("--"):
            key, _, value = arg[2:].partition("=")
            result[key] = value
    return result


def env_dict(container: Obj) -> dict[str, Obj]:
    """Environment entries by name (the whole entry: value or valueFrom)."""
    return {e["name"]: e for e in container.get("env", [])}


def mounts(container: Obj) -> dict[str, Obj]:
    """Volume mounts by mount path."""
    return {m["mountPath"]: m for m in container.get("volumeMounts", [])}


def volumes(workload: Obj) -> dict[str, Obj]:
    return {v["name"]: v for v in pod_spec(workload).get("volumes", [])}


def iter_containers(objects: list[Obj]) -> Iterator[tuple[Obj, Obj]]:
    """(workload, container) for every container of every Deployment and DaemonSet."""
    for obj in objects:
        if obj["kind"] in ("Deployment", "DaemonSet"):
            for c in pod_spec(obj)["containers"]:
                yield obj, c
