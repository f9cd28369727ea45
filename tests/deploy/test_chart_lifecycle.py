"""`helm upgrade` with unchanged values restarts nothing; `helm uninstall` leaves nothing behind.

An upgrade re-renders every template; if anything in a pod template differs (a random value, a
timestamp, a checksum of something that changes on its own), Kubernetes rolls the pods, and a
rolled controller abandons the power cycles it has in flight. Uninstall deletes exactly the
objects of the release's manifest: an object kept by ``helm.sh/resource-policy: keep``, made by
a hook, or shipped as a CRD (Helm never deletes CRDs) would outlive the release.
"""

from __future__ import annotations

import re

import pytest

from tests.deploy.chart import CHART_DIR, RENDER_CASES, Obj, render

#: Kinds without a namespace: uninstall must take every one of them away.
CLUSTER_SCOPED = {
    "CSIDriver",
    "StorageClass",
    "ClusterRole",
    "ClusterRoleBinding",
    "VolumeSnapshotClass",
}


def _by_identity(objects: list[Obj]) -> dict[tuple[str, str], Obj]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


@pytest.mark.parametrize("case", sorted(RENDER_CASES))
def test_an_upgrade_with_the_same_values_changes_nothing(case: str) -> None:
    run = RENDER_CASES[case]
    installed = _by_identity(run.objects())
    upgraded = _by_identity(
        render(run.values, api_versions=run.api_versions, release=run.release, is_upgrade=True)
    )
    again = _by_identity(
        render(run.values, api_versions=run.api_versions, release=run.release, is_upgrade=True)
    )
    assert upgraded.keys() == installed.keys()
    for identity, obj in installed.items():
        # Identical objects: in particular no pod template changes, so no pod restarts.
        assert upgraded[identity] == obj, identity
        assert again[identity] == obj, identity


def test_templates_use_nothing_that_changes_between_renders() -> None:
    """No clock, randomness or cluster lookup: offline renders could not show their effect."""
    volatile = re.compile(r"\b(now|date|randAlpha\w*|randNumeric|randAscii|uuidv4|lookup)\b")
    for template in sorted((CHART_DIR / "templates").iterdir()):
        text = template.read_text()
        assert not volatile.search(text), f"{template.name}: {volatile.search(text)}"


@pytest.mark.parametrize("case", sorted(RENDER_CASES))
def test_uninstall_takes_every_cluster_scoped_object_away(case: str) -> None:
    objects = RENDER_CASES[case].objects()
    scoped = [o for o in objects if o["kind"] in CLUSTER_SCOPED]
    assert {o["kind"] for o in scoped} >= {
        "CSIDriver",
        "StorageClass",
        "ClusterRole",
        "ClusterRoleBinding",
    }
    for obj in objects:
        annotations = obj["metadata"].get("annotations") or {}
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        # Hook objects are not part of the release manifest: uninstall does not delete them.
        assert not any(key.startswith("helm.sh/hook") for key in annotations), where
        # `keep` tells Helm to leave the object on uninstall.
        assert annotations.get("helm.sh/resource-policy") != "keep", where
        if obj["kind"] in CLUSTER_SCOPED:
            assert "namespace" not in obj["metadata"], where
        else:
            # A namespaced object in another namespace would be one a reader does not expect.
            assert obj["metadata"].get("namespace", "kube-system") == "kube-system", where
    # Helm installs crds/ but never deletes them.
    assert not (CHART_DIR / "crds").exists()
