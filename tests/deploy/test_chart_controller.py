"""The controller Deployment and its RBAC: the properties an install depends on.

Sidecar versions and flags are checked against the releases the chart is written for; the
timeouts against what one attach costs on Oxide (a whole stop/attach/start cycle of the node's
instance, bounded by the plugin at 10 minutes); the RBAC rules sidecar by sidecar, exactly, so
that both a missing and a surplus permission fail.
"""

from __future__ import annotations

import re

import pytest

from tests.deploy.chart import (
    EVERYTHING,
    EXISTING_SECRET,
    NAMESPACE,
    RELEASE,
    SNAPSHOT_API,
    SOCKET,
    Obj,
    all_of,
    args_dict,
    containers,
    controller,
    env_dict,
    find,
    mounts,
    pod_spec,
    render,
    render_files,
    volumes,
)

SIDECAR_IMAGES = {
    "csi-provisioner": "registry.k8s.io/sig-storage/csi-provisioner:v6.3.0",
    "csi-attacher": "registry.k8s.io/sig-storage/csi-attacher:v4.12.0",
    "csi-snapshotter": "registry.k8s.io/sig-storage/csi-snapshotter:v8.6.0",
    "liveness-probe": "registry.k8s.io/sig-storage/livenessprobe:v2.19.0",
}
PLUGIN_CYCLE_SECONDS = 600  # AttachCoordinator's op_timeout: one stop/attach/start cycle


def seconds(duration: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    parts = re.findall(r"([0-9.]+)(ms|s|m|h)", duration)
    assert "".join(n + u for n, u in parts) == duration, duration
    return sum(float(n) * units[u] for n, u in parts)


def test_containers_and_sidecar_versions() -> None:
    deployment = controller(render(api_versions=SNAPSHOT_API))
    found = containers(deployment)
    assert set(found) == {"oxide-csi", *SIDECAR_IMAGES}
    for name, image in SIDECAR_IMAGES.items():
        assert found[name]["image"] == image
    assert found["oxide-csi"]["image"] == "oxide-csi:0.1.0"  # appVersion
    # Oxide cannot resize a disk: no resizer.
    assert not any("resizer" in c["image"] for c in found.values())


def test_plugin_runs_in_controller_mode_with_state_in_kubernetes() -> None:
    deployment = controller(render())
    plugin = containers(deployment)["oxide-csi"]
    assert plugin["args"][0] == "serve"
    args = args_dict(plugin)
    assert args["mode"] == "controller"
    assert args["endpoint"] == f"unix://{SOCKET}"
    assert args["state-backend"] == "kubernetes"
    # No state on any node's disk: the state dir is only read once, for an upgrade's import.
    assert args["state-dir"] == "/var/lib/oxide-csi"
    state = volumes(deployment)[mounts(plugin)["/var/lib/oxide-csi"]["name"]]
    assert state == {"name": state["name"], "emptyDir": {}}
    assert not any("hostPath" in v for v in volumes(deployment).values())
    # Where the state lives and who holds a Lease: the downward API.
    env = env_dict(plugin)
    assert env["POD_NAMESPACE"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert "OXIDE_CSI_LEASE_DURATION" not in env  # the plugin's default
    tuned = containers(controller(render({"controller": {"leaseDuration": 45}})))["oxide-csi"]
    assert env_dict(tuned)["OXIDE_CSI_LEASE_DURATION"]["value"] == "45"


def test_credentials_come_from_the_secret_and_never_from_args() -> None:
    for values, secret in (({}, f"{RELEASE}-oxide"), (EXISTING_SECRET, "my-oxide")):
        plugin = containers(controller(render(values)))["oxide-csi"]
        env = env_dict(plugin)
        for var, key in (
            ("OXIDE_HOST", "host"),
            ("OXIDE_TOKEN", "token"),
            ("OXIDE_PROJECT", "project"),
        ):
            ref = env[var]["valueFrom"]["secretKeyRef"]
            assert (ref["name"], ref["key"]) == (secret, key)
            assert not ref.get("optional", False)
        assert env["OXIDE_API_VERSION"]["valueFrom"]["secretKeyRef"]["optional"] is True
        assert not any("token" in a for a in plugin["args"])


def test_settings_reach_the_plugin() -> None:
    plugin = containers(controller(render(EVERYTHING)))["oxide-csi"]
    env = env_dict(plugin)
    assert env["OXIDE_API_VERSION"] == {"name": "OXIDE_API_VERSION", "value": "2026072800.0.0"}
    assert env["OXIDE_MAX_DISKS_PER_INSTANCE"]["value"] == "12"
    assert env["OXIDE_CSI_ATTACH_BATCH_WINDOW"]["value"] == "5"
    assert env["LOG_LEVEL"]["value"] == "debug"
    assert env["LOG_FORMAT"]["value"] == "console"
    assert env["EXTRA"]["value"] == "1"
    assert "OXIDE_CSI_METRICS_ADDRESS" not in env  # metrics off in this value set
    defaults = env_dict(containers(controller(render()))["oxide-csi"])
    assert defaults["OXIDE_CSI_METRICS_ADDRESS"]["value"] == "0.0.0.0:9809"
    assert defaults["LOG_FORMAT"]["value"] == "json"
    assert "OXIDE_CSI_ATTACH_BATCH_WINDOW" not in defaults  # the plugin's own default


def test_every_container_shares_the_socket_directory() -> None:
    deployment = controller(render())
    socket_volume = volumes(deployment)["socket-dir"]
    assert socket_volume == {"name": "socket-dir", "emptyDir": {}}
    for name, container in containers(deployment).items():
        assert mounts(container)["/csi"]["name"] == "socket-dir", name
        if name != "oxide-csi":
            assert args_dict(container)["csi-address"] == SOCKET, name


def test_sidecar_flags_and_timeouts() -> None:
    found = containers(controller(render(api_versions=SNAPSHOT_API)))
    provisioner = args_dict(found["csi-provisioner"])
    attacher = args_dict(found["csi-attacher"])
    snapshotter = args_dict(found["csi-snapshotter"])
    for args in (provisioner, attacher, snapshotter):
        assert args["leader-election"] == "true"
        assert "http-endpoint" in args
    assert provisioner["default-fstype"] == "ext4"
    assert provisioner["extra-create-metadata"] == "true"
    # Topology needs no feature gate in v6 (GA), and none a newer sidecar might not know.
    assert "feature-gates" not in provisioner
    assert snapshotter["extra-create-metadata"] == "true"
    # An attach is a power cycle: the attacher outwaits the plugin's bound on one cycle.
    assert seconds(attacher["timeout"]) > PLUGIN_CYCLE_SECONDS
    assert seconds(provisioner["timeout"]) >= 120  # create + wait for the disk
    assert seconds(snapshotter["timeout"]) >= 60
    assert args_dict(found["liveness-probe"])["http-endpoint"] == ":9808"


def test_overridden_timeout_and_extra_args() -> None:
    attacher = containers(controller(render(EVERYTHING)))["csi-attacher"]
    assert args_dict(attacher)["timeout"] == "20m"
    assert "--worker-threads=4" in attacher["args"]


def test_scheduled_on_the_control_plane_and_never_two_at_once() -> None:
    deployment = controller(render())
    spec = pod_spec(deployment)
    # By the role label's key, never its value ("" on kubeadm and Talos, "true" on k3s, RKE2).
    assert "nodeSelector" not in spec
    required = spec["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert required["nodeSelectorTerms"] == [
        {
            "matchExpressions": [
                {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists"}
            ]
        }
    ]
    assert {
        "key": "node-role.kubernetes.io/control-plane",
        "operator": "Exists",
        "effect": "NoSchedule",
    } in spec["tolerations"]
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert deployment["spec"]["replicas"] == 1
    assert spec["priorityClassName"] == "system-cluster-critical"


def test_plugin_gets_time_to_recover_before_liveness_counts() -> None:
    plugin = containers(controller(render()))["oxide-csi"]
    startup = plugin["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] > PLUGIN_CYCLE_SECONDS
    assert plugin["livenessProbe"]["httpGet"]["port"] == "healthz"
    assert {p["name"]: p["containerPort"] for p in plugin["ports"]}["healthz"] == 9808


def test_nothing_in_the_controller_is_privileged() -> None:
    for name, container in containers(controller(render())).items():
        ctx = container["securityContext"]
        assert not ctx.get("privileged", False), name
        assert ctx["allowPrivilegeEscalation"] is False, name
        assert ctx["readOnlyRootFilesystem"] is True, name
        assert ctx["capabilities"] == {"drop": ["ALL"]}, name


def _snapshot_parts(objects: list[Obj]) -> set[str]:
    """What snapshots add: the sidecar, its ClusterRole, the classes, its metrics port."""
    parts = set()
    if "csi-snapshotter" in containers(controller(objects)):
        parts.add("sidecar")
    if f"{RELEASE}-controller-snapshotter" in {
        o["metadata"]["name"] for o in all_of(objects, "ClusterRole")
    }:
        parts.add("rbac")
    if all_of(objects, "VolumeSnapshotClass"):
        parts.add("classes")
    service = find(objects, "Service", f"{RELEASE}-controller-metrics")
    if "snapshot-http" in {p["name"] for p in service["spec"]["ports"]}:
        parts.add("metrics-port")
    return parts


ALL_SNAPSHOT_PARTS = {"sidecar", "rbac", "classes", "metrics-port"}


@pytest.mark.parametrize(
    ("mode", "api_versions", "expected"),
    [
        # auto (the default) follows the cluster: a fresh k3s/kubeadm has no snapshot CRDs.
        (None, (), set()),
        (None, SNAPSHOT_API, ALL_SNAPSHOT_PARTS),
        ("auto", SNAPSHOT_API, ALL_SNAPSHOT_PARTS),
        (True, (), ALL_SNAPSHOT_PARTS),
        (True, SNAPSHOT_API, ALL_SNAPSHOT_PARTS),
        (False, (), set()),
        (False, SNAPSHOT_API, set()),
    ],
)
def test_snapshots_follow_the_cluster(
    mode: bool | str | None, api_versions: tuple[str, ...], expected: set[str]
) -> None:
    values = {} if mode is None else {"snapshots": {"enabled": mode}}
    assert _snapshot_parts(render(values, api_versions=api_versions)) == expected


@pytest.mark.parametrize(
    ("mode", "api_versions", "says"),
    [
        (None, (), "LEFT OUT: snapshots"),
        (True, (), "must be installed in the cluster"),
        (False, SNAPSHOT_API, "Snapshots are off"),
    ],
)
def test_notes_say_what_was_left_out(
    mode: bool | None, api_versions: tuple[str, ...], says: str
) -> None:
    values = {} if mode is None else {"snapshots": {"enabled": mode}}
    notes = render_files(values, api_versions=api_versions)["oxide-csi/templates/NOTES.txt"]
    assert says in notes
    if mode is None:
        assert "helm upgrade" in notes  # how to add snapshots later
    notes_with_api = render_files({}, api_versions=SNAPSHOT_API)["oxide-csi/templates/NOTES.txt"]
    assert "LEFT OUT" not in notes_with_api


# ---- RBAC -----------------------------------------------------------------------------------

Rules = dict[tuple[str, str], set[str]]

EXPECTED_RULES: dict[str, Rules] = {
    "provisioner": {
        ("", "persistentvolumes"): {"get", "list", "watch", "create", "patch", "delete"},
        ("", "persistentvolumeclaims"): {"get", "list", "watch", "update"},
        ("storage.k8s.io", "storageclasses"): {"get", "list", "watch"},
        ("", "events"): {"list", "watch", "create", "update", "patch"},
        # v6 sets and sweeps its volumesnapshot-as-source-protection finalizer.
        ("snapshot.storage.k8s.io", "volumesnapshots"): {"get", "list", "watch", "update"},
        ("snapshot.storage.k8s.io", "volumesnapshotcontents"): {"get", "list"},
        ("storage.k8s.io", "csinodes"): {"get", "list", "watch"},
        ("", "nodes"): {"get", "list", "watch"},
        ("storage.k8s.io", "volumeattachments"): {"get", "list", "watch"},
        ("storage.k8s.io", "volumeattributesclasses"): {"get", "list", "watch"},
    },
    "attacher": {
        ("", "persistentvolumes"): {"get", "list", "watch", "patch"},
        ("storage.k8s.io", "csinodes"): {"get", "list", "watch"},
        ("storage.k8s.io", "volumeattachments"): {"get", "list", "watch", "patch"},
        ("storage.k8s.io", "volumeattachments/status"): {"patch"},
    },
    "snapshotter": {
        ("", "events"): {"list", "watch", "create", "update", "patch"},
        ("snapshot.storage.k8s.io", "volumesnapshotclasses"): {"get", "list", "watch"},
        ("snapshot.storage.k8s.io", "volumesnapshotcontents"): {
            "create",
            "get",
            "list",
            "watch",
            "update",
            "delete",
            "patch",
        },
        ("snapshot.storage.k8s.io", "volumesnapshotcontents/status"): {"update", "patch"},
    },
}


#: The plugin's own (kubernetes state backend): cluster-wide reads and Events ...
PLUGIN_RULES: Rules = {
    ("", "nodes"): {"get", "list"},
    ("storage.k8s.io", "csinodes"): {"get", "list"},
    ("", "events"): {"create"},
}
#: ... and its state, in the release namespace only.
PLUGIN_STATE_RULES: Rules = {
    ("", "configmaps"): {"get", "list", "create", "update", "delete"},
    ("coordination.k8s.io", "leases"): {"get", "create", "update"},
}


def flatten(role: Obj) -> Rules:
    rules: Rules = {}
    for rule in role["rules"]:
        assert "resourceNames" not in rule and "nonResourceURLs" not in rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                rules.setdefault((group, resource), set()).update(rule["verbs"])
    return rules


@pytest.mark.parametrize("sidecar", sorted(EXPECTED_RULES))
def test_rbac_verbs_per_sidecar(sidecar: str) -> None:
    objects = render(api_versions=SNAPSHOT_API)
    name = f"{RELEASE}-controller-{sidecar}"
    assert flatten(find(objects, "ClusterRole", name)) == EXPECTED_RULES[sidecar]
    binding = find(objects, "ClusterRoleBinding", name)
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": name,
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": f"{RELEASE}-controller", "namespace": NAMESPACE}
    ]


def test_plugin_rbac_for_state_leases_nodes_and_events() -> None:
    objects = render()
    cluster = find(objects, "ClusterRole", f"{RELEASE}-controller-plugin")
    assert flatten(cluster) == PLUGIN_RULES
    binding = find(objects, "ClusterRoleBinding", f"{RELEASE}-controller-plugin")
    assert binding["roleRef"]["name"] == f"{RELEASE}-controller-plugin"
    state = find(objects, "Role", f"{RELEASE}-controller-plugin-state")
    assert state["metadata"]["namespace"] == NAMESPACE
    assert flatten(state) == PLUGIN_STATE_RULES
    bound = find(objects, "RoleBinding", f"{RELEASE}-controller-plugin-state")
    assert bound["metadata"]["namespace"] == NAMESPACE
    assert bound["subjects"] == [
        {"kind": "ServiceAccount", "name": f"{RELEASE}-controller", "namespace": NAMESPACE}
    ]


def test_file_backend_has_no_plugin_rbac() -> None:
    objects = render({"controller": {"stateBackend": "file"}})
    names = {o["metadata"]["name"] for o in objects if "Role" in o["kind"]}
    assert not any("plugin" in name for name in names)
    plugin = containers(controller(objects))["oxide-csi"]
    assert args_dict(plugin)["state-backend"] == "file"


def test_no_role_reads_secrets_or_uses_wildcards() -> None:
    for role in all_of(render(), "ClusterRole") + all_of(render(), "Role"):
        for (group, resource), verbs in flatten(role).items():
            assert resource != "secrets", role["metadata"]["name"]
            assert "*" not in verbs and "*" not in (group, resource)


def test_leader_election_is_namespaced() -> None:
    objects = render()
    role = find(objects, "Role", f"{RELEASE}-controller-leader-election")
    assert role["metadata"]["namespace"] == NAMESPACE
    assert flatten(role) == {
        ("coordination.k8s.io", "leases"): {"get", "watch", "list", "delete", "update", "create"}
    }
    binding = find(objects, "RoleBinding", f"{RELEASE}-controller-leader-election")
    assert binding["subjects"][0]["name"] == f"{RELEASE}-controller"


def test_existing_service_account_is_used_and_not_created() -> None:
    objects = render(EXISTING_SECRET)
    assert pod_spec(controller(objects))["serviceAccountName"] == "pre-made"
    accounts = {o["metadata"]["name"] for o in all_of(objects, "ServiceAccount")}
    assert "pre-made" not in accounts
    for binding in all_of(objects, "ClusterRoleBinding"):
        assert binding["subjects"][0]["name"] == "pre-made"
