"""RBAC for chosen tokens: a token given grants may do only what they allow (403 otherwise).

Grants come as Kubernetes ``PolicyRule`` dicts, or straight from a chart's rendered Roles,
ClusterRoles and their bindings for one ServiceAccount (``from_manifests``), so a test can
run the plugin with exactly the permissions its chart gives it and see a missing rule fail
as it would in a cluster. Tokens without grants are cluster admins, as before. The rules
follow the authorizer: ``*`` wildcards, ``resourceNames`` never matching a request without a
name (create, list, watch), a Role's rules in its namespace only, a ClusterRole bound by a
RoleBinding in that binding's namespace, by a ClusterRoleBinding everywhere.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from kube_sim.errors import ApiError


@dataclass(frozen=True)
class Grant:
    namespace: str | None  # None: every namespace and the cluster scope
    rule: dict[str, Any]

    def allows(self, verb: str, group: str, resource: str, namespace: str, name: str) -> bool:
        if self.namespace is not None and self.namespace != namespace:
            return False
        rule = self.rule

        def has(field: str, value: str) -> bool:
            values = rule.get(field) or []
            return "*" in values or value in values

        if not (has("verbs", verb) and has("apiGroups", group) and has("resources", resource)):
            return False
        names = rule.get("resourceNames") or []
        return not names or name in names


def verb_of(method: str, name: str | None, watch: bool) -> str:
    if method == "GET":
        return "get" if name else ("watch" if watch else "list")
    table = {"POST": "create", "PUT": "update", "PATCH": "patch"}
    if method == "DELETE":
        return "delete" if name else "deletecollection"
    return table.get(method, method.lower())


class Rbac:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._grants: dict[str, tuple[str, list[Grant]]] = {}

    def grant(self, token: str, user: str, grants: list[Grant]) -> None:
        with self._lock:
            _, existing = self._grants.get(token, (user, []))
            self._grants[token] = (user, existing + grants)

    def check(
        self,
        token: str | None,
        verb: str,
        group: str,
        resource: str,
        namespace: str,
        name: str,
    ) -> None:
        with self._lock:
            entry = self._grants.get(token) if token is not None else None
        if entry is None:
            return
        user, grants = entry
        if any(g.allows(verb, group, resource, namespace, name) for g in grants):
            return
        what = f'{resource} "{name}"' if name else resource
        where = f'in the namespace "{namespace}"' if namespace else "at the cluster scope"
        raise ApiError(
            403,
            "Forbidden",
            f'{what} is forbidden: User "{user}" cannot {verb} resource "{resource}" in API '
            f'group "{group}" {where}',
            {"name": name, "group": group, "kind": resource} if name else {"kind": resource},
        )


def from_manifests(manifests: list[dict[str, Any]], service_account: str) -> list[Grant]:
    """The grants a ServiceAccount (``"namespace/name"``) gets from these RBAC objects."""
    sa_namespace, sa_name = service_account.split("/", 1)
    roles: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for obj in manifests:
        if obj.get("kind") in ("Role", "ClusterRole"):
            meta = obj["metadata"]
            scope = meta.get("namespace", "") if obj["kind"] == "Role" else ""
            roles[(obj["kind"], f"{scope}/{meta['name']}")] = obj.get("rules") or []
    grants: list[Grant] = []
    for obj in manifests:
        if obj.get("kind") not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        subjects = obj.get("subjects") or []
        if not any(
            s.get("kind") == "ServiceAccount"
            and s.get("name") == sa_name
            and s.get("namespace", obj["metadata"].get("namespace")) == sa_namespace
            for s in subjects
        ):
            continue
        ref = obj["roleRef"]
        binding_ns = obj["metadata"].get("namespace") if obj["kind"] == "RoleBinding" else None
        scope = (binding_ns or "") if ref["kind"] == "Role" else ""
        for rule in roles.get((ref["kind"], f"{scope}/{ref['name']}"), []):
            grants.append(Grant(binding_ns, rule))
    return grants
