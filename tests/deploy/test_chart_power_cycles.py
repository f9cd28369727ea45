"""What the chart does so that a power cycle never takes down what must stay up.

Control-plane nodes are found by the role label's *key*: kubeadm and Talos label them with
``node-role.kubernetes.io/control-plane: ""``, k3s and RKE2 with ``"true"`` (plus ``master``
and ``etcd`` keys). Node affinity is evaluated here the way the scheduler does it (terms ORed,
expressions within a term ANDed), over the labels each distribution really sets.
"""

from __future__ import annotations

import pytest

from tests.deploy.chart import (
    RELEASE,
    Obj,
    all_of,
    args_dict,
    containers,
    controller,
    env_dict,
    find,
    pod_spec,
    render,
)

CP = "node-role.kubernetes.io/control-plane"
NODES: dict[str, dict[str, str]] = {
    "kubeadm control plane": {CP: ""},
    "talos control plane": {CP: ""},
    "k3s server": {CP: "true", "node-role.kubernetes.io/master": "true"},
    "rke2 server": {
        CP: "true",
        "node-role.kubernetes.io/master": "true",
        "node-role.kubernetes.io/etcd": "true",
    },
    "worker": {"node-role.kubernetes.io/worker": "true"},
    "unlabelled worker": {},
}
CONTROL_PLANE = {name for name, labels in NODES.items() if CP in labels}
ATTACHABLE = "csi.oxide.computer/attachable"


def _matches(expression: Obj, labels: dict[str, str]) -> bool:
    key, operator = expression["key"], expression["operator"]
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    if operator == "In":
        return labels.get(key) in expression["values"]
    raise AssertionError(f"operator {operator} not modelled")


def schedulable_on(workload: Obj, labels: dict[str, str]) -> bool:
    """Whether the workload's nodeSelector and required node affinity admit these labels."""
    spec = pod_spec(workload)
    if any(labels.get(k) != v for k, v in spec.get("nodeSelector", {}).items()):
        return False
    required = (
        spec.get("affinity", {})
        .get("nodeAffinity", {})
        .get("requiredDuringSchedulingIgnoredDuringExecution")
    )
    if required is None:
        return True
    return any(
        all(_matches(e, labels) for e in term["matchExpressions"])
        for term in required["nodeSelectorTerms"]
    )


def _node_labels(extra: dict[str, str]) -> dict[str, str]:
    return {"kubernetes.io/os": "linux", **extra}


def test_controller_runs_on_every_distributions_control_plane_and_nowhere_else() -> None:
    deployment = controller(render())
    for name, labels in NODES.items():
        assert schedulable_on(deployment, _node_labels(labels)) is (name in CONTROL_PLANE), name
    tolerated = {t["key"] for t in pod_spec(deployment)["tolerations"] if "key" in t}
    assert CP in tolerated


def test_each_node_gets_one_node_plugin_and_control_planes_are_not_attachable() -> None:
    daemonsets = all_of(render(), "DaemonSet")
    assert {d["metadata"]["name"] for d in daemonsets} == {f"{RELEASE}-node", f"{RELEASE}-node-cp"}
    selectors = [d["spec"]["selector"]["matchLabels"] for d in daemonsets]
    assert selectors[0] != selectors[1], "two DaemonSets must never claim each other's pods"
    for name, labels in NODES.items():
        runs = [d for d in daemonsets if schedulable_on(d, _node_labels(labels))]
        assert len(runs) == 1, name
        attachable = args_dict(containers(runs[0])["oxide-csi"])["attachable"]
        assert attachable == ("false" if name in CONTROL_PLANE else "true"), name
    # The DaemonSet every node had before keeps its name and selector: upgrades replace nothing.
    workers = find(daemonsets, "DaemonSet", f"{RELEASE}-node")
    assert workers["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "node"


def test_compact_clusters_can_mark_control_planes_attachable() -> None:
    (daemonset,) = all_of(render({"node": {"controlPlane": {"attachable": True}}}), "DaemonSet")
    assert args_dict(containers(daemonset)["oxide-csi"])["attachable"] == "true"
    for labels in NODES.values():
        assert schedulable_on(daemonset, _node_labels(labels))


def test_the_operators_own_node_affinity_is_kept_beside_the_split() -> None:
    preferred = [
        {"weight": 1, "preference": {"matchExpressions": [{"key": "a", "operator": "Exists"}]}}
    ]
    values = {
        "node": {
            "affinity": {
                "nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": preferred}
            }
        }
    }
    for daemonset in all_of(render(values), "DaemonSet"):
        affinity = pod_spec(daemonset)["affinity"]["nodeAffinity"]
        assert affinity["preferredDuringSchedulingIgnoredDuringExecution"] == preferred
        assert "requiredDuringSchedulingIgnoredDuringExecution" in affinity


def test_storage_classes_allow_attachable_nodes_only() -> None:
    for storage_class in all_of(render(), "StorageClass"):
        assert storage_class["allowedTopologies"] == [
            {"matchLabelExpressions": [{"key": ATTACHABLE, "values": ["true"]}]}
        ]


def test_attacher_has_workers_for_power_cycle_long_calls() -> None:
    attacher = args_dict(containers(controller(render()))["csi-attacher"])
    assert attacher["worker-threads"] == "100"
    overridden = render({"sidecars": {"attacher": {"workerThreads": 300}}})
    assert args_dict(containers(controller(overridden))["csi-attacher"])["worker-threads"] == "300"


def test_node_id_is_the_instance_uuid_by_default() -> None:
    for daemonset in all_of(render(), "DaemonSet"):
        env = env_dict(containers(daemonset)["oxide-csi"])
        assert "KUBE_NODE_NAME" not in env and "CSI_NODE_ID" not in env


@pytest.mark.parametrize("seconds", [900, 3600])
def test_alert_on_an_instance_left_stopped(seconds: int) -> None:
    assert all_of(render(), "PrometheusRule") == []  # the CRD may not exist: off by default
    values = {"prometheusRule": {"enabled": True, "instanceStoppedSeconds": seconds}}
    (rule,) = all_of(render(values), "PrometheusRule")
    alerts = {a["alert"]: a for a in rule["spec"]["groups"][0]["rules"]}
    assert sorted(alerts) == ["OxideCSIDeferredDeleteStale", "OxideInstanceLeftStopped"]
    alert = alerts["OxideInstanceLeftStopped"]
    assert alert["expr"] == (f"max(oxide_csi_attach_instance_stopped_longest_seconds) > {seconds}")


@pytest.mark.parametrize("seconds", [86400, 3600])
def test_deferred_detach_and_its_stale_delete_alert(seconds: int) -> None:
    default = env_dict(containers(controller(render()))["oxide-csi"])
    assert default["OXIDE_CSI_DETACH_POLICY"]["value"] == "deferred"
    assert default["OXIDE_CSI_DEFERRED_DELETE_ALERT_AFTER"]["value"] == "86400"
    values = {
        "prometheusRule": {"enabled": True},
        "controller": {"detachPolicy": "immediate", "deferredDeleteAlertAfter": seconds},
    }
    rendered = render(values)
    env = env_dict(containers(controller(rendered))["oxide-csi"])
    assert env["OXIDE_CSI_DETACH_POLICY"]["value"] == "immediate"
    assert env["OXIDE_CSI_DEFERRED_DELETE_ALERT_AFTER"]["value"] == str(seconds)
    (rule,) = all_of(rendered, "PrometheusRule")
    alerts = {a["alert"]: a for a in rule["spec"]["groups"][0]["rules"]}
    stale = alerts["OxideCSIDeferredDeleteStale"]
    assert stale["expr"] == f"max(oxide_csi_deferred_deletion_oldest_seconds) > {seconds}"
    assert stale["labels"]["severity"] == "warning"
    assert "release-instance" in stale["annotations"]["description"]


@pytest.mark.parametrize(("cycle", "expected"), [(None, "720s"), (1800, "1920s")])
def test_attacher_timeout_covers_one_cycle(cycle: int | None, expected: str) -> None:
    values = {} if cycle is None else {"controller": {"attachCycleTimeout": cycle}}
    attacher = args_dict(containers(controller(render(values)))["csi-attacher"])
    assert attacher["timeout"] == expected  # the cycle's bound plus two minutes
