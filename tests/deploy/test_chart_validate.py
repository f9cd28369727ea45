"""Every rendered object against the Kubernetes API schemas, offline (kubernetes-validate).

Strict mode: an unknown field is an error, as ``kubectl apply --validate=strict`` would make
it. Checked against the oldest Kubernetes the chart supports (1.34, from Chart.yaml) and the
newest the validator knows. VolumeSnapshotClass is a CRD of the external-snapshotter project
that kubernetes-validate has no schema for; it is checked against the CRD's rules written out
below (required driver and deletionPolicy, string parameters, nothing else).
"""

from __future__ import annotations

import copy
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from tests.deploy.chart import RENDER_CASES, SNAPSHOT_API, Obj, containers, node, render

K8S_VERSIONS = ("1.34.0", kubernetes_validate.latest_version())

_NAME = {"type": "string", "minLength": 1, "maxLength": 253}
VOLUME_SNAPSHOT_CLASS = {
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind", "metadata", "driver", "deletionPolicy"],
    "properties": {
        "apiVersion": {"const": "snapshot.storage.k8s.io/v1"},
        "kind": {"const": "VolumeSnapshotClass"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": _NAME,
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "driver": _NAME,
        "deletionPolicy": {"enum": ["Delete", "Retain"]},
        "parameters": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


def validate(obj: Obj, version: str) -> None:
    if obj["kind"] == "VolumeSnapshotClass":
        jsonschema.validate(obj, VOLUME_SNAPSHOT_CLASS)
        return
    kubernetes_validate.validate(obj, version, strict=True)


def _all_objects() -> list[tuple[str, Obj]]:
    return [(name, obj) for name, case in RENDER_CASES.items() for obj in case.objects()]


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_rendered_object_is_valid(version: str) -> None:
    objects = _all_objects()
    kinds = {obj["kind"] for _, obj in objects}
    # All the kinds the chart makes were seen, so none escaped validation unseen.
    assert kinds == {
        "CSIDriver",
        "ClusterRole",
        "ClusterRoleBinding",
        "DaemonSet",
        "Deployment",
        "PodDisruptionBudget",
        "Role",
        "RoleBinding",
        "Secret",
        "Service",
        "ServiceAccount",
        "StorageClass",
        "VolumeSnapshotClass",
    }
    for name, obj in objects:
        try:
            validate(obj, version)
        except (kubernetes_validate.ValidationError, jsonschema.ValidationError) as exc:
            pytest.fail(f"{name}: {obj['kind']}/{obj['metadata']['name']}: {exc.message}")


def _break(obj: Obj, how: str) -> Obj:
    broken = copy.deepcopy(obj)
    if how == "propagation":
        plugin = containers(broken)["oxide-csi"]
        plugin["volumeMounts"][0]["mountPropagation"] = 2
    elif how == "unknown-field":
        broken["spec"]["template"]["spec"]["hostPID "] = True
    elif how == "port-type":
        containers(broken)["oxide-csi"]["ports"][0]["containerPort"] = "9808"
    return broken


@pytest.mark.parametrize("how", ["propagation", "unknown-field", "port-type"])
def test_the_validator_catches_broken_objects(how: str) -> None:
    daemonset = node(render())
    validate(daemonset, K8S_VERSIONS[0])
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(_break(daemonset, how), K8S_VERSIONS[0])


@pytest.mark.parametrize(
    "change", [{"driver": ""}, {"deletionPolicy": "Keep"}, {"parameters": {"x": 1}}]
)
def test_the_snapshot_class_rules_catch_broken_objects(change: dict[str, Any]) -> None:
    (vsc,) = [o for o in render(api_versions=SNAPSHOT_API) if o["kind"] == "VolumeSnapshotClass"]
    validate(vsc, K8S_VERSIONS[0])
    with pytest.raises(jsonschema.ValidationError):
        validate({**vsc, **change}, K8S_VERSIONS[0])
