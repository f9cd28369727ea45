"""The node DaemonSet: what kubelet and the plugin must agree on.

The plugin's mounts under the kubelet directory only reach kubelet and the pods with
Bidirectional propagation, and kubelet only finds the plugin through the socket path the
registrar reports, which must be the host side of the directory the plugin listens in.
"""

from __future__ import annotations

from tests.deploy.chart import (
    DRIVER,
    EVERYTHING,
    RELEASE,
    SOCKET,
    all_of,
    args_dict,
    containers,
    env_dict,
    mounts,
    node,
    pod_spec,
    render,
    volumes,
)


def test_containers_and_versions() -> None:
    found = containers(node(render()))
    assert set(found) == {"oxide-csi", "node-driver-registrar", "liveness-probe"}
    assert found["node-driver-registrar"]["image"] == (
        "registry.k8s.io/sig-storage/csi-node-driver-registrar:v2.17.0"
    )
    assert found["liveness-probe"]["image"] == "registry.k8s.io/sig-storage/livenessprobe:v2.19.0"


def test_plugin_runs_in_node_mode() -> None:
    plugin = containers(node(render()))["oxide-csi"]
    args = args_dict(plugin)
    assert plugin["args"][0] == "serve"
    assert args == {
        "mode": "node",
        "endpoint": f"unix://{SOCKET}",
        "kubelet-dir": "/var/lib/kubelet",
        "attachable": "true",
    }


def test_kubelet_dir_is_bidirectional_at_the_same_path() -> None:
    for values, kubelet in (
        ({}, "/var/lib/kubelet"),
        (EVERYTHING, "/var/snap/microk8s/common/var/lib/kubelet"),
    ):
        daemonset = node(render(values))
        plugin = containers(daemonset)["oxide-csi"]
        mount = mounts(plugin)[kubelet]
        assert mount["mountPropagation"] == "Bidirectional"
        assert volumes(daemonset)[mount["name"]]["hostPath"] == {
            "path": kubelet,
            "type": "Directory",
        }
        assert args_dict(plugin)["kubelet-dir"] == kubelet
        # Only the plugin sees the kubelet directory; no sidecar propagates mounts.
        for name, container in containers(daemonset).items():
            for m in container.get("volumeMounts", []):
                if name != "oxide-csi":
                    assert "mountPropagation" not in m, name


def test_dev_and_sys_come_from_the_host() -> None:
    daemonset = node(render())
    plugin_mounts = mounts(containers(daemonset)["oxide-csi"])
    vols = volumes(daemonset)
    assert vols[plugin_mounts["/dev"]["name"]]["hostPath"]["path"] == "/dev"
    assert vols[plugin_mounts["/sys"]["name"]]["hostPath"]["path"] == "/sys"


def test_socket_and_registration_paths_agree() -> None:
    for values, kubelet in (
        ({}, "/var/lib/kubelet"),
        (EVERYTHING, "/var/snap/microk8s/common/var/lib/kubelet"),
    ):
        daemonset = node(render(values))
        found = containers(daemonset)
        vols = volumes(daemonset)
        plugin_dir = f"{kubelet}/plugins/{DRIVER}"
        # Every container mounts the same host directory at /csi ...
        for name, container in found.items():
            volume = vols[mounts(container)["/csi"]["name"]]
            assert volume["hostPath"]["path"] == plugin_dir, name
        # ... the sidecars dial the socket there, and kubelet is told its host path.
        registrar = args_dict(found["node-driver-registrar"])
        assert registrar["csi-address"] == SOCKET
        assert registrar["kubelet-registration-path"] == f"{plugin_dir}/csi.sock"
        assert args_dict(found["liveness-probe"])["csi-address"] == SOCKET
        registration = vols[mounts(found["node-driver-registrar"])["/registration"]["name"]]
        assert registration["hostPath"]["path"] == f"{kubelet}/plugins_registry"


def test_only_the_plugin_is_privileged() -> None:
    for name, container in containers(node(render())).items():
        privileged = container["securityContext"].get("privileged", False)
        assert privileged is (name == "oxide-csi"), name


def test_node_id_source() -> None:
    # The default, instanceUUID: no name given, so the plugin reads the instance id from DMI
    # under /sys -- right whatever the nodes are called.
    for values in ({}, EVERYTHING):
        uuid_env = env_dict(containers(node(render(values)))["oxide-csi"])
        assert "KUBE_NODE_NAME" not in uuid_env and "CSI_NODE_ID" not in uuid_env
    named = env_dict(containers(node(render({"node": {"nodeIdSource": "nodeName"}})))["oxide-csi"])
    assert named["KUBE_NODE_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}


def test_node_holds_no_credentials_and_no_api_token() -> None:
    objects = render(EVERYTHING)
    daemonset = node(objects)
    for container in pod_spec(daemonset)["containers"]:
        for entry in container.get("env", []):
            assert not entry["name"].startswith("OXIDE_") or entry["name"] in (
                "OXIDE_MAX_DISKS_PER_INSTANCE",
                "OXIDE_CSI_METRICS_ADDRESS",
            )
            assert "secretKeyRef" not in entry.get("valueFrom", {})
    assert pod_spec(daemonset)["automountServiceAccountToken"] is False
    # Nothing grants the node's ServiceAccount anything.
    bound = {
        s["name"]
        for kind in ("ClusterRoleBinding", "RoleBinding")
        for b in all_of(objects, kind)
        for s in b["subjects"]
    }
    assert f"{RELEASE}-node" not in bound


def test_runs_on_every_node() -> None:
    spec = pod_spec(node(render()))
    assert spec["tolerations"] == [{"operator": "Exists"}]
    assert spec["priorityClassName"] == "system-node-critical"
    assert spec.get("hostNetwork", False) is False


def test_disk_limit_and_metrics_reach_the_node_plugin() -> None:
    env = env_dict(containers(node(render(EVERYTHING)))["oxide-csi"])
    assert env["OXIDE_MAX_DISKS_PER_INSTANCE"]["value"] == "12"
    assert env["OXIDE_CSI_METRICS_ADDRESS"]["value"] == "0.0.0.0:9810"
    default_plugin = containers(node(render()))["oxide-csi"]
    assert "OXIDE_CSI_METRICS_ADDRESS" not in env_dict(default_plugin)
    assert "metrics" not in {p["name"] for p in default_plugin.get("ports", [])}
