"""Judge a request the plugin's client sent: query, path, ``api-version`` header and body.

Why: what the client sends is what a real rack will receive, so it must be what the document
accepts. A request the simulator refused (4xx) may be a test of bad input on purpose, so for
those only the shape is checked: no field or parameter the API does not have.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .document import JSON_SCHEMA_PTR, Operation, Spec, is_json
from .project_selectors import selector_problems

#: The api-version of the plugin's generation probe (``oxide_csi.oxide.generation``): newer
#: than any rack serves, so that a versioned rack refuses it.
PROBE_API_VERSION = "9999999999.0.0"


def _coerce(kind: Any, raw: str) -> Any:
    """Give a query string value the JSON type its schema expects, when it parses as one."""
    if kind == "integer" and re.fullmatch(r"-?[0-9]+", raw):
        return int(raw)
    if kind == "boolean" and raw in ("true", "false"):
        return raw == "true"
    if kind == "number":
        try:
            return float(raw)
        except ValueError:
            return raw
    return raw


def _query_problems(
    spec: Spec, op: Operation, query: Mapping[str, Any], shape_only: bool
) -> list[str]:
    params = spec.parameters(op)
    problems = []
    for name, raw in query.items():
        values = raw if isinstance(raw, list) else [raw]
        found = params.get(("query", name))
        if found is None:
            problems.append(f"unknown query parameter {name!r}")
            continue
        if shape_only:
            continue
        if len(values) != 1:
            problems.append(f"query parameter {name!r} given {len(values)} times")
        pointer = f"{found[1]}/schema"
        kind = spec.schema_type(pointer)
        for value in values:
            problems += [
                f"query {name} {e}" for e in spec.schema_errors(pointer, _coerce(kind, str(value)))
            ]
    if shape_only:
        return problems
    for (where, name), (param, _) in params.items():
        if where == "query" and param.get("required") and name not in query:
            problems.append(f"required query parameter {name!r} missing")
    pagination = op.node.get("x-dropshot-pagination")
    if isinstance(pagination, dict) and "page_token" not in query:
        for name in pagination.get("required", []):
            if name not in query and not params.get(("query", name), ({}, ""))[0].get("required"):
                problems.append(f"first page of the list lacks query parameter {name!r}")
    return problems


def _version_problems(spec: Spec, op: Operation, entry: Mapping[str, Any]) -> list[str]:
    """The client must pin an ``api-version`` the document describes.

    Nexus serves a request without the header at its newest version (whatever that is on a
    given rack), so a client that omits it gets shapes this document may not describe; one
    newer than the document asks for an API nobody checked the client against.

    One request is meant to be refused: the client's generation probe asks ``GET /v1/me`` at
    :data:`PROBE_API_VERSION`, which a versioned rack must refuse (400) and an unversioned one
    ignores. It does no work, so the pin rule does not apply to it; instead a versioned
    document's rack must never have answered it with success.
    """
    headers = entry.get("request_headers") or {}
    raw = headers.get("api-version")
    if raw == PROBE_API_VERSION and op.key == "GET /v1/me":
        status = entry.get("status")
        answered = isinstance(status, int) and 200 <= status < 300
        if answered and spec.versioned:
            return ["a versioned rack answered the generation probe instead of refusing it"]
        return []
    if not spec.versioned:
        return []  # releases up to v17 ignore the header, whatever it says
    if raw is None:
        return ["request lacks the api-version header"]
    wanted, newest = _semver(str(raw)), _semver(str(spec.document.get("info", {}).get("version")))
    if wanted is None:
        return [f"api-version {raw!r} is not a semver version"]
    if newest is not None and wanted > newest:
        return [f"api-version {raw} is newer than the document's {'.'.join(map(str, newest))}"]
    return []


def _semver(text: str) -> tuple[int, int, int] | None:
    match = re.fullmatch(r"([0-9]+)\.([0-9]+)\.([0-9]+)", text.strip())
    return None if match is None else (int(match[1]), int(match[2]), int(match[3]))


def request_problems(
    spec: Spec,
    op: Operation,
    path_params: Mapping[str, str],
    entry: Mapping[str, Any],
    shape_only: bool,
) -> list[str]:
    """Problems of a request the plugin's client sent; shape_only when it was refused (4xx)."""
    query = entry.get("query") or {}
    problems = _query_problems(spec, op, query, shape_only)
    if not shape_only:
        problems += _version_problems(spec, op, entry)
        params = spec.parameters(op)
        for name, value in path_params.items():
            _, ptr = params.get(("path", name), ({}, ""))
            problems += [f"path {name} {e}" for e in spec.schema_errors(f"{ptr}/schema", value)]
        problems += selector_problems(spec, op, path_params, query)
    body = entry.get("request_body")
    raw_body = op.node.get("requestBody")
    if raw_body is None:
        return problems + (
            [] if body is None else ["request body sent to an operation that takes none"]
        )
    spec_body, ptr = spec.deref(raw_body, f"{op.pointer}/requestBody")
    if body is None:
        if spec_body.get("required") and not shape_only:
            problems.append("request body missing")
        return problems
    if "application/json" not in spec_body.get("content", {}):
        return [*problems, f"operation takes {', '.join(spec_body['content'])}, not JSON"]
    content_type = (entry.get("request_headers") or {}).get("content-type")
    if not shape_only and not is_json(content_type):
        problems.append(f"request content-type {content_type!r} is not application/json")
    errors = spec.schema_errors(ptr + JSON_SCHEMA_PTR, body, shape=shape_only)
    return problems + [f"request body {e}" for e in errors]
