"""Judge a simulator answer: its status must be declared and its body match the document.

Why: the client is written against what the simulator answers; an answer no rack would give
(an undeclared status, a missing or extra field, a body where none is due) lets the client
come to rely on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .document import JSON_SCHEMA_PTR, Operation, Spec, is_json


def response_problems(spec: Spec, op: Operation, entry: Mapping[str, Any]) -> list[str]:
    status = entry.get("status")
    if status is None:
        return []  # dropped connection: nothing was answered
    if isinstance(status, bool) or not isinstance(status, int):
        return [f"status {status!r} is not an HTTP status code"]
    declared = op.node.get("responses", {})
    key = next((k for k in (str(status), f"{status // 100}XX") if k in declared), None)
    if key is None and status >= 400 and "default" in declared:
        key = "default"
    if key is None:
        return [f"status {status} not declared (declares {', '.join(sorted(declared))})"]
    response, ptr = spec.deref(declared[key], f"{op.pointer}/responses/{key}")
    body = entry.get("response_body")
    content = response.get("content")
    if not content:
        return [] if body is None else [f"status {status} has no body in the document, got one"]
    if body is None:
        return [f"status {status} must carry a JSON body, got none"]
    problems = []
    content_type = (entry.get("response_headers") or {}).get("content-type")
    if not is_json(content_type):
        problems.append(f"response content-type {content_type!r} is not application/json")
    if "application/json" not in content:
        return [*problems, f"document declares {', '.join(content)} for status {status}"]
    errors = spec.schema_errors(ptr + JSON_SCHEMA_PTR, body)
    return problems + [f"response body {e}" for e in errors]
