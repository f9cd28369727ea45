"""RBAC for tokens given grants: Roles in their namespace, ClusterRoles by binding, 403s."""

from __future__ import annotations

from typing import Any

import httpx

from kube_sim import KubeSim
from tests.kube_sim.conftest import NAMESPACE, TOKENS, cm_path, lease_path

A, B = TOKENS
SA = f"{NAMESPACE}/controller"


def _manifests() -> list[dict[str, Any]]:
    subject = [{"kind": "ServiceAccount", "name": "controller", "namespace": NAMESPACE}]
    return [
        {
            "kind": "Role",
            "metadata": {"name": "state", "namespace": NAMESPACE},
            "rules": [
                {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["*"]},
                {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "create"]},
            ],
        },
        {
            "kind": "RoleBinding",
            "metadata": {"name": "state", "namespace": NAMESPACE},
            "roleRef": {"kind": "Role", "name": "state"},
            "subjects": subject,
        },
        {
            "kind": "ClusterRole",
            "metadata": {"name": "nodes"},
            "rules": [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list"]}],
        },
        {
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "nodes"},
            "roleRef": {"kind": "ClusterRole", "name": "nodes"},
            "subjects": subject,
        },
        {
            "kind": "ClusterRole",
            "metadata": {"name": "events"},
            "rules": [{"apiGroups": [""], "resources": ["events"], "verbs": ["create"]}],
        },
        {  # a ClusterRole bound in one namespace only
            "kind": "RoleBinding",
            "metadata": {"name": "events", "namespace": "default"},
            "roleRef": {"kind": "ClusterRole", "name": "events"},
            "subjects": subject,
        },
        {  # someone else's binding gives this account nothing
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "other"},
            "roleRef": {"kind": "ClusterRole", "name": "events"},
            "subjects": [{"kind": "ServiceAccount", "name": "other", "namespace": NAMESPACE}],
        },
    ]


def test_grants_from_manifests(sim: KubeSim, http: httpx.Client) -> None:
    assert sim.grant_from_manifests(A, _manifests(), SA) == 4
    sim.add_node("n1")
    ok = [
        http.post(lease_path(), json={"metadata": {"name": "l"}, "spec": {}}),
        http.get(lease_path("l")),
        http.post(cm_path(), json={"metadata": {"name": "c"}}),
        http.get(cm_path("c")),
        http.get("/api/v1/nodes"),
        http.get("/api/v1/nodes/n1"),
        http.post(
            "/api/v1/namespaces/default/events",
            json={"metadata": {"name": "e"}, "involvedObject": {"kind": "Node", "name": "n1"}},
        ),
    ]
    assert [r.status_code for r in ok] == [201, 200, 201, 200, 200, 200, 201]
    denied = [
        http.get(cm_path()),  # list is not get
        http.delete(cm_path("c")),
        http.get("/api/v1/namespaces/default/configmaps/c"),  # the Role is for its namespace
        http.post(f"/api/v1/namespaces/{NAMESPACE}/events", json={"metadata": {"name": "e"}}),
        http.get("/apis/storage.k8s.io/v1/csinodes"),
    ]
    assert [r.status_code for r in denied] == [403] * 5
    body = denied[0].json()
    assert body["reason"] == "Forbidden"
    assert body["message"] == (
        f'configmaps is forbidden: User "system:serviceaccount:{NAMESPACE}:controller" cannot '
        f'list resource "configmaps" in API group "" in the namespace "{NAMESPACE}"'
    )
    assert "at the cluster scope" in denied[4].json()["message"]
    with httpx.Client(base_url=sim.url, headers={"authorization": f"Bearer {B}"}) as admin:
        assert admin.get(cm_path()).status_code == 200  # no grants: an admin


def test_resource_names_never_match_create_or_list(sim: KubeSim, http: httpx.Client) -> None:
    rule = {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["*"], "resourceNames": ["x"]}
    sim.grant(A, [rule], namespace=NAMESPACE)
    sim.create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": NAMESPACE}}
    )
    assert http.get(cm_path("x")).status_code == 200
    assert http.get(cm_path("y")).status_code == 403
    assert http.get(cm_path()).status_code == 403
    assert http.post(cm_path(), json={"metadata": {"name": "x"}}).status_code == 403
    assert http.get("/version").status_code == 200 and http.get("/apis").status_code == 200
