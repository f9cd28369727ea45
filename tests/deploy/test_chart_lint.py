"""``helm lint`` (strict) and the values schema, through the real Helm v4 engine.

Why the schema matters: the plugin refuses any StorageClass parameter but fsType and blockSize,
and a refused parameter only shows up when the first claim fails. The schema moves that failure
to ``helm install``; these tests prove it does, and that it still accepts what is valid.
"""

from __future__ import annotations

from typing import Any

import helm_python as helm
import pytest

from tests.deploy.chart import CHART_DIR, NAMESPACE, VALUE_SETS, render

WARNING = 2


@pytest.mark.parametrize("name", sorted(VALUE_SETS))
def test_lint_is_clean_in_strict_mode(name: str) -> None:
    report = helm.lint(CHART_DIR, VALUE_SETS[name], strict=True, namespace=NAMESPACE)
    assert report["errors"] == []
    problems = [m for m in report["messages"] if m["severity"] >= WARNING]
    assert problems == []
    assert report["total_charts_linted"] == 1


def test_lint_reports_a_broken_value() -> None:
    # The lint itself must be able to fail: an unknown StorageClass parameter is an error.
    bad = {"storageClasses": [{"name": "x", "parameters": {"type": "io1"}}]}
    report = helm.lint(CHART_DIR, bad, strict=True, namespace=NAMESPACE)
    assert report["errors"], report


def test_chart_metadata() -> None:
    with helm.Chart.load(CHART_DIR) as chart:
        meta = chart.metadata
        assert meta["name"] == "oxide-csi"
        assert meta["apiVersion"] == "v2"
        # external-provisioner v6.3.0 needs storage.k8s.io/v1 VolumeAttributesClass (1.34).
        assert meta["kubeVersion"] == ">=1.34.0-0"
        assert chart.schema is not None


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"storageClasses": [{"name": "x", "parameters": {"type": "gp3"}}]}, "type"),
        ({"storageClasses": [{"name": "x", "parameters": {"fsType": "btrfs"}}]}, "fsType"),
        ({"storageClasses": [{"name": "x", "parameters": {"blockSize": "1024"}}]}, "blockSize"),
        ({"storageClasses": [{"name": "x", "parameters": {"blockSize": 8192}}]}, "blockSize"),
        # The provisioner itself refuses both spellings of the filesystem at once.
        (
            {
                "storageClasses": [
                    {
                        "name": "x",
                        "parameters": {"fsType": "xfs", "csi.storage.k8s.io/fstype": "xfs"},
                    }
                ]
            },
            "not",
        ),
        ({"storageClasses": [{"name": "x", "reclaimPolicy": "Recycle"}]}, "reclaimPolicy"),
        ({"controller": {"replica": 2}}, "replica"),
        ({"node": {"nodeIdSource": "hostname"}}, "nodeIdSource"),
        ({"node": {"kubeletDir": "var/lib/kubelet"}}, "kubeletDir"),
        ({"oxide": {"host": "oxide.example.com"}}, "host"),
        ({"oxide": {"maxDisksPerInstance": 1}}, "maxDisksPerInstance"),
        ({"sidecars": {"attacher": {"timeout": "ten minutes"}}}, "timeout"),
        ({"logLevel": "verbose"}, "logLevel"),
    ],
)
def test_schema_refuses(values: dict[str, Any], complaint: str) -> None:
    with pytest.raises(helm.HelmValuesError) as caught:
        render(values)
    assert complaint in str(caught.value)


@pytest.mark.parametrize(
    "parameters",
    [
        {},
        {"fsType": "xfs"},
        {"fsType": "ext4", "blockSize": "512"},
        {"blockSize": 2048},
        {"csi.storage.k8s.io/fstype": "xfs", "blockSize": 4096},
    ],
)
def test_schema_accepts_every_parameter_the_plugin_accepts(parameters: dict[str, Any]) -> None:
    objects = render({"storageClasses": [{"name": "x", "parameters": parameters}]})
    (sc,) = [o for o in objects if o["kind"] == "StorageClass"]
    assert sc.get("parameters", {}) == {k: str(v) for k, v in parameters.items()}


def test_partial_credentials_fail_the_render() -> None:
    with pytest.raises(helm.HelmRenderError, match="must be given together"):
        render({"oxide": {"host": "https://oxide.example.com", "token": "t"}})
