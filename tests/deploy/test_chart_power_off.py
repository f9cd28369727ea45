"""``gracefulPowerOff``: off by default; on, the node plugin gets exactly what it needs.

What it needs: the host's PID namespace (its power-off enters PID 1's namespaces), a service
account token and a Role for its heartbeat Lease and the watch on its requests; the controller
gets the two flags (its Role already covers requests and heartbeats). Control-plane nodes are
never cycled, so their DaemonSet gets none of it.
"""

from __future__ import annotations

import pytest

from tests.deploy.chart import (
    all_of,
    args_dict,
    containers,
    controller,
    env_dict,
    find,
    pod_spec,
    render,
)

ON = {"gracefulPowerOff": {"enabled": True, "stopTimeout": 90}}


def _daemonsets(objects: list[dict]) -> dict[str, dict]:  # type: ignore[type-arg]
    return {d["metadata"]["name"]: d for d in all_of(objects, "DaemonSet")}


def test_off_by_default_the_node_gets_nothing_new() -> None:
    objects = render()
    for daemonset in _daemonsets(objects).values():
        spec = pod_spec(daemonset)
        assert spec["automountServiceAccountToken"] is False
        assert "hostPID" not in spec
        assert "--graceful-power-off" not in containers(daemonset)["oxide-csi"]["args"]
    assert "--graceful-power-off" not in containers(controller(objects))["oxide-csi"]["args"]
    assert [r for r in all_of(objects, "Role") if r["metadata"]["name"].endswith("power-off")] == []


def test_on_the_attachable_nodes_answer_and_the_controller_asks() -> None:
    objects = render(ON)
    daemonsets = _daemonsets(objects)
    assert sorted(daemonsets) == ["oxide-csi-node", "oxide-csi-node-cp"]
    node_spec = pod_spec(daemonsets["oxide-csi-node"])
    assert node_spec["hostPID"] is True and node_spec["automountServiceAccountToken"] is True
    plugin = containers(daemonsets["oxide-csi-node"])["oxide-csi"]
    assert {"--graceful-power-off", "--state-backend=kubernetes"} <= set(plugin["args"])
    env = env_dict(plugin)
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert "OXIDE_CSI_POWER_OFF_COMMAND" not in env  # the default command

    cp_spec = pod_spec(daemonsets["oxide-csi-node-cp"])  # never cycled: nothing to answer
    assert "hostPID" not in cp_spec and cp_spec["automountServiceAccountToken"] is False

    args = args_dict(containers(controller(objects))["oxide-csi"])
    assert (args["graceful-power-off"], args["graceful-stop-timeout"]) == ("", "90")

    role = find(objects, "Role", "oxide-csi-node-power-off")
    assert role["rules"] == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "verbs": ["get", "create", "update"],
        },
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list", "watch"]},
    ]
    binding = find(objects, "RoleBinding", "oxide-csi-node-power-off")
    assert (
        binding["subjects"][0]["name"]
        == pod_spec(daemonsets["oxide-csi-node"])["serviceAccountName"]
    )


def test_a_custom_command_reaches_the_node() -> None:
    objects = render({"gracefulPowerOff": {"enabled": True, "command": "systemctl poweroff"}})
    plugin = containers(_daemonsets(objects)["oxide-csi-node"])["oxide-csi"]
    assert env_dict(plugin)["OXIDE_CSI_POWER_OFF_COMMAND"]["value"] == "systemctl poweroff"


def test_the_file_backend_cannot_carry_it() -> None:
    with pytest.raises(Exception, match="stateBackend=kubernetes"):
        render({**ON, "controller": {"stateBackend": "file"}})
