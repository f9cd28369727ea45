"""CSIDriver, StorageClasses, VolumeSnapshotClasses, the Secret, Services and the PDB."""

from __future__ import annotations

from tests.deploy.chart import (
    DRIVER,
    EVERYTHING,
    EXISTING_SECRET,
    NAMESPACE,
    RELEASE,
    SNAPSHOT_API,
    all_of,
    controller,
    find,
    node,
    render,
    render_files,
)


def test_csidriver() -> None:
    driver = find(render(), "CSIDriver")
    assert driver["metadata"]["name"] == DRIVER
    spec = driver["spec"]
    assert spec["attachRequired"] is True
    assert spec["podInfoOnMount"] is False
    assert spec["fsGroupPolicy"] == "File"
    assert spec["volumeLifecycleModes"] == ["Persistent"]


def test_default_storage_class() -> None:
    sc = find(render(), "StorageClass")
    assert sc["metadata"]["name"] == "oxide-disk"
    assert sc["provisioner"] == DRIVER
    assert sc["volumeBindingMode"] == "WaitForFirstConsumer"
    assert sc["reclaimPolicy"] == "Delete"
    assert sc["allowVolumeExpansion"] is False
    assert sc["parameters"] == {"fsType": "ext4"}
    assert "storageclass.kubernetes.io/is-default-class" not in sc["metadata"].get(
        "annotations", {}
    )


def test_storage_classes_from_values() -> None:
    objects = render(EVERYTHING)
    xfs = find(objects, "StorageClass", "oxide-xfs")
    assert xfs["provisioner"] == DRIVER
    assert xfs["parameters"] == {"fsType": "xfs", "blockSize": "512"}
    assert xfs["reclaimPolicy"] == "Retain"
    assert xfs["volumeBindingMode"] == "Immediate"
    assert xfs["mountOptions"] == ["noatime"]
    assert xfs["metadata"]["annotations"]["storageclass.kubernetes.io/is-default-class"] == "true"
    assert xfs["metadata"]["labels"]["cost-center"] == "storage"
    plain = find(objects, "StorageClass", "oxide-plain")
    assert "parameters" not in plain
    assert plain["volumeBindingMode"] == "WaitForFirstConsumer"
    assert plain["allowVolumeExpansion"] is False


def test_volume_snapshot_classes() -> None:
    default = find(render(api_versions=SNAPSHOT_API), "VolumeSnapshotClass")
    assert default["driver"] == DRIVER
    assert default["deletionPolicy"] == "Delete"
    classes = {
        c["metadata"]["name"]: c for c in all_of(render(EXISTING_SECRET), "VolumeSnapshotClass")
    }
    assert classes["oxide-keep"]["deletionPolicy"] == "Retain"
    annotations = classes["oxide-snap"]["metadata"]["annotations"]
    assert annotations == {"snapshot.storage.kubernetes.io/is-default-class": "true"}


def test_secret_only_from_given_credentials() -> None:
    assert all_of(render(), "Secret") == []  # the operator creates it (NOTES says how)
    assert all_of(render(EXISTING_SECRET), "Secret") == []
    secret = find(render(EVERYTHING), "Secret")
    assert secret["metadata"]["name"] == f"{RELEASE}-oxide"
    assert secret["metadata"]["namespace"] == NAMESPACE
    assert secret["stringData"] == {
        "host": "https://oxide.example.com",
        "token": "oxide-token-value",
        "project": "k8s",
    }
    # A changed Secret rolls the controller (the checksum annotation changes with it).
    annotations = controller(render(EVERYTHING))["spec"]["template"]["metadata"]["annotations"]
    assert len(annotations["checksum/oxide-secret"]) == 64


def test_notes_tell_what_to_do() -> None:
    notes = render_files()[f"{RELEASE}/templates/NOTES.txt"]
    assert f"create secret generic {RELEASE}-oxide" in notes
    assert "STOPS AND STARTS" in notes
    notes = render_files(EVERYTHING)[f"{RELEASE}/templates/NOTES.txt"]
    assert "create secret" not in notes
    assert "release data" in notes  # token in values is flagged
    assert "replicas is 2" in notes


def test_metrics_services_select_their_pods() -> None:
    objects = render({"node": {"metrics": {"enabled": True}}})
    for component, workload, port in (
        ("controller", controller(objects), 9809),
        ("node", node(objects), 9810),
    ):
        service = find(objects, "Service", f"{RELEASE}-{component}-metrics")
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert service["spec"]["selector"].items() <= labels.items()
        ports = {p["name"]: p for p in service["spec"]["ports"]}
        assert ports["metrics"]["port"] == port
        assert ports["metrics"]["targetPort"] == "metrics"
        plugin = next(
            c
            for c in workload["spec"]["template"]["spec"]["containers"]
            if c["name"] == "oxide-csi"
        )
        assert {p["name"]: p["containerPort"] for p in plugin["ports"]}["metrics"] == port
    node_service = find(objects, "Service", f"{RELEASE}-node-metrics")
    assert node_service["spec"]["clusterIP"] == "None"
    for daemonset in all_of(objects, "DaemonSet"):  # the control-plane nodes' plugins too
        labels = daemonset["spec"]["template"]["metadata"]["labels"]
        assert node_service["spec"]["selector"].items() <= labels.items()
    assert all_of(render(EXISTING_SECRET), "Service") == []
    # Node metrics are off by default (every node pays their memory); the controller's are on.
    services = [o["metadata"]["name"] for o in all_of(render(), "Service")]
    assert services == [f"{RELEASE}-controller-metrics"]


def test_pod_disruption_budget_keeps_drains_possible() -> None:
    pdb = find(render(), "PodDisruptionBudget")
    assert pdb["spec"]["maxUnavailable"] == 1
    assert "minAvailable" not in pdb["spec"]
    assert pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "controller"
    assert all_of(render(EVERYTHING), "PodDisruptionBudget") == []


def test_every_object_is_labelled_for_the_release() -> None:
    for obj in render(EVERYTHING):
        labels = obj["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == RELEASE
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["cost-center"] == "storage"
        if obj["kind"] not in ("CSIDriver", "StorageClass", "ClusterRole", "ClusterRoleBinding"):
            assert obj["metadata"]["namespace"] == NAMESPACE, obj["kind"]
