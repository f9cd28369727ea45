"""From a request line to an API call: URL parsing, discovery documents, the verb table.

Kept apart from the socket handling in ``http`` so it can be read as the API's map:
``/api/v1/...`` (the core group) and ``/apis/<group>/<version>/...``, namespaced paths
``.../namespaces/<ns>/<plural>[/<name>]`` and cluster paths ``.../<plural>[/<name>]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kube_sim import resources
from kube_sim.errors import ApiError, bad_request
from kube_sim.resources import Resource
from kube_sim.store import Store


@dataclass(frozen=True)
class Target:
    res: Resource
    namespace: str | None  # None: every namespace (a list or watch across namespaces)
    name: str | None


def _not_found(path: str) -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def parse(path: str) -> Target | None:
    """The resource a path names, or None for a discovery path (raises 404 for unknown)."""
    parts = [p for p in path.split("/") if p]
    if parts[:2] == ["api", "v1"]:
        group, version, rest = "", "v1", parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    if not rest:
        return None
    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) >= 3:
        namespace, rest = rest[1], rest[2:]
    res = resources.by_path(group, version, rest[0])
    if res is None or len(rest) > 2:
        raise _not_found(path)
    name = rest[1] if len(rest) == 2 else None
    if res.namespaced and name is not None and namespace is None:
        raise _not_found(path)
    if not res.namespaced and namespace is not None:
        raise _not_found(path)
    return Target(res, namespace, name)


def discovery(path: str, git_version: str) -> dict[str, Any]:
    parts = [p for p in path.split("/") if p]
    if parts == ["version"]:
        major, minor = git_version.lstrip("v").split(".")[:2]
        return {
            "major": major,
            "minor": minor,
            "gitVersion": git_version,
            "platform": "linux/amd64",
        }
    if parts == ["api"]:
        return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
    if parts == ["apis"]:
        return {
            "kind": "APIGroupList",
            "apiVersion": "v1",
            "groups": [
                {
                    "name": group,
                    "versions": [{"groupVersion": f"{group}/{v}", "version": v} for v in versions],
                    "preferredVersion": {
                        "groupVersion": f"{group}/{versions[0]}",
                        "version": versions[0],
                    },
                }
                for group, versions in resources.groups().items()
            ],
        }
    if parts == ["api", "v1"]:
        return _resource_list("", "v1")
    if len(parts) == 3 and parts[0] == "apis" and resources.in_group_version(parts[1], parts[2]):
        return _resource_list(parts[1], parts[2])
    raise _not_found(path)


def _resource_list(group: str, version: str) -> dict[str, Any]:
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": [
            {
                "name": r.plural,
                "singularName": r.kind.lower(),
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
            }
            for r in resources.in_group_version(group, version)
        ],
    }


def list_body(res: Resource, items: list[dict[str, Any]], rv: str, cont: str) -> dict[str, Any]:
    for item in items:  # the real server leaves kind and apiVersion out of list items
        item.pop("kind", None)
        item.pop("apiVersion", None)
    meta: dict[str, Any] = {"resourceVersion": rv}
    if cont:
        meta["continue"] = cont
    return {"kind": res.list_kind, "apiVersion": res.api_version, "metadata": meta, "items": items}


def page(
    items: list[dict[str, Any]], limit: str | None, cont: str | None
) -> tuple[list[dict[str, Any]], str]:
    """``limit``/``continue`` paging; the continue token is the offset of the next item."""
    try:
        start = int(cont) if cont else 0
        size = int(limit) if limit else 0
    except ValueError:
        raise bad_request("invalid limit or continue parameter") from None
    if size <= 0:
        return items[start:], ""
    end = start + size
    return items[start:end], str(end) if end < len(items) else ""


def call(
    store: Store, method: str, target: Target, query: dict[str, str], body: Any, ctype: str
) -> tuple[int, dict[str, Any]]:
    """Run one non-watch request: returns (HTTP status, JSON body)."""
    res, ns, name = target.res, target.namespace or "", target.name
    if method == "GET" and name is None:
        items, rv = store.list(
            res, target.namespace, query.get("labelSelector"), query.get("fieldSelector")
        )
        items, cont = page(items, query.get("limit"), query.get("continue"))
        return 200, list_body(res, items, rv, cont)
    if method == "GET" and name is not None:
        return 200, store.get(res, ns, name)
    if method == "POST" and name is None and (target.namespace is not None or not res.namespaced):
        return 201, store.create(res, ns, _object(body))
    if method == "PUT" and name is not None:
        out, created = store.update(res, ns, name, _object(body))
        return (201 if created else 200), out
    if method == "PATCH" and name is not None:
        return 200, store.patch(res, ns, name, ctype, body)
    if method == "DELETE" and name is not None:
        options = body if isinstance(body, dict) else {}
        details = store.delete(res, ns, name, options.get("preconditions"))
        return 200, {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": details,
        }
    raise ApiError(
        405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
    )


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request("the body of the request must be a JSON object")
    return body
