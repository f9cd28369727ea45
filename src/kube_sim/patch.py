"""PATCH bodies: JSON merge patch (RFC 7386) and JSON patch (RFC 6902).

Strategic merge patch (lightkube's default) is applied as a merge patch: for the kinds
kube_sim serves the two differ only for lists with merge keys (Node conditions, PVC
conditions...), which the plugin does not patch. Server-side apply is not served (415).
"""

from __future__ import annotations

import copy
from typing import Any

from kube_sim.errors import ApiError, bad_request

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY = "application/apply-patch+yaml"


def apply(content_type: str, target: dict[str, Any], body: Any) -> dict[str, Any]:
    kind = content_type.split(";")[0].strip().lower()
    if kind in (MERGE, STRATEGIC):
        if not isinstance(body, dict):
            raise bad_request("the body of a merge patch must be a JSON object")
        merged = merge(target, body)
        assert isinstance(merged, dict)
        return merged
    if kind == JSON_PATCH:
        return json_patch(target, body)
    raise ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: "
        f"{JSON_PATCH}, {MERGE}, {STRATEGIC}",
    )


def merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    out = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge(out.get(key), value)
    return out


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request(f"invalid JSON pointer: {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str], path: str) -> Any:
    node = doc
    for part in parts[:-1]:
        try:
            node = node[int(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, ValueError, TypeError):
            raise bad_request(f"jsonpatch: path {path!r} does not exist") from None
    return node


def _get(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    if not parts:
        return doc
    parent = _parent(doc, parts, path)
    try:
        return parent[int(parts[-1])] if isinstance(parent, list) else parent[parts[-1]]
    except (KeyError, IndexError, ValueError, TypeError):
        raise bad_request(f"jsonpatch: path {path!r} does not exist") from None


def _remove(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    parent = _parent(doc, parts, path)
    try:
        if isinstance(parent, list):
            return parent.pop(int(parts[-1]))
        return parent.pop(parts[-1])
    except (KeyError, IndexError, ValueError, TypeError, AttributeError):
        raise bad_request(f"jsonpatch remove operation does not apply: {path!r}") from None


def _add(doc: Any, path: str, value: Any) -> None:
    parts = _pointer(path)
    parent = _parent(doc, parts, path)
    last = parts[-1]
    if isinstance(parent, list):
        index = len(parent) if last == "-" else int(last)
        if not 0 <= index <= len(parent):
            raise bad_request(f"jsonpatch add operation does not apply: {path!r}")
        parent.insert(index, value)
    elif isinstance(parent, dict):
        parent[last] = value
    else:
        raise bad_request(f"jsonpatch add operation does not apply: {path!r}")


def json_patch(target: dict[str, Any], ops: Any) -> dict[str, Any]:
    if not isinstance(ops, list):
        raise bad_request("the body of a JSON patch must be a JSON array")
    doc = copy.deepcopy(target)
    for op in ops:
        name, path = op.get("op"), op.get("path", "")
        if name == "add":
            _add(doc, path, copy.deepcopy(op.get("value")))
        elif name == "remove":
            _remove(doc, path)
        elif name == "replace":
            _remove(doc, path)
            _add(doc, path, copy.deepcopy(op.get("value")))
        elif name in ("move", "copy"):
            value = _remove(doc, op["from"]) if name == "move" else _get(doc, op["from"])
            _add(doc, path, copy.deepcopy(value))
        elif name == "test":
            if _get(doc, path) != op.get("value"):
                raise ApiError(422, "Invalid", f"testing value {path} failed", {"causes": []})
        else:
            raise bad_request(f"Unexpected kind: {name}")
    return doc
