#!/usr/bin/env python3
"""Hold a simulator traffic log against the Oxide OpenAPI document (run by CI).

Why: the simulated Oxide and the plugin's Oxide client are both our own reading of the
API. If they drift the same way, every test stays green while the plugin breaks on a
real rack. So CI records every /v1 exchange of the test suite (``OXIDE_SIM_TRAFFIC_LOG``)
and this check demands that the simulator answers what the document promises and that
the plugin's client (User-Agent ``oxide-csi/...``) sends only what the document accepts.

Stricter than the document in two ways, both on purpose:
- objects may not carry properties the document does not list (the document leaves
  ``additionalProperties`` open): an extra field in a simulator answer is one the client
  could come to rely on although no rack sends it, and an extra field in a client request
  is one a rack ignores or refuses;
- a ``{resource}`` selector given by name needs ``project`` and one given by UUID must not
  have it, because Nexus answers 400 otherwise;
- the client must send an ``api-version`` header no newer than the document's version (the
  header is optional for Nexus, which then serves its newest version).

Coverage (``--require-endpoints``) counts only 2xx answers to the plugin's client.

Usage: openapi_conformance.py LOG --openapi PATH [--require-endpoints]; exit 1 on failure.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from jsonschema import FormatChecker
from jsonschema.exceptions import ValidationError
from openapi_schema_validator import OAS30Validator, oas30_format_checker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

CLIENT_AGENT_PREFIX = "oxide-csi/"

# Operations the test suite must exercise successfully (a 2xx answer) under --require-endpoints.
REQUIRED_OPERATIONS: tuple[str, ...] = (
    "GET /v1/me",
    "GET /v1/projects/{project}",
    "GET /v1/disks",
    "POST /v1/disks",
    "GET /v1/disks/{disk}",
    "DELETE /v1/disks/{disk}",
    "GET /v1/snapshots",
    "POST /v1/snapshots",
    "GET /v1/snapshots/{snapshot}",
    "DELETE /v1/snapshots/{snapshot}",
    "GET /v1/instances",
    "GET /v1/instances/{instance}",
    "POST /v1/instances/{instance}/start",
    "POST /v1/instances/{instance}/stop",
    "GET /v1/instances/{instance}/disks",
    "POST /v1/instances/{instance}/disks/attach",
    "POST /v1/instances/{instance}/disks/detach",
    "GET /v1/images",
)

_FULL_URI = "urn:oxide-openapi:full"
_SHAPE_URI = "urn:oxide-openapi:shape"
_JSON_SCHEMA_PTR = "/content/application~1json/schema"
_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$")
# Keywords that constrain values rather than shape; dropped for the shape-only check.
_VALUE_KEYWORDS = frozenset(
    {
        "pattern",
        "format",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "uniqueItems",
        "multipleOf",
        "minProperties",
        "maxProperties",
    }
)
_NULL_BRANCH: dict[str, Any] = {"enum": [None]}
_CLIP = 180


def _int_range(low: int, high: int) -> Callable[[object], bool]:
    def check(instance: object) -> bool:
        if isinstance(instance, bool) or not isinstance(instance, int):
            return True
        return low <= instance <= high

    return check


def _format_checker() -> FormatChecker:
    """OAS 3.0 formats (uuid, date-time, ...) plus the Rust integer widths the document uses."""
    checker = FormatChecker(formats=())
    checker.checkers.update(oas30_format_checker.checkers)
    for bits in (8, 16, 32, 64):
        checker.checks(f"uint{bits}")(_int_range(0, 2**bits - 1))
        checker.checks(f"int{bits}")(_int_range(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1))
    checker.checks("uint")(_int_range(0, 2**64 - 1))
    return checker


def _adapt(schema: Any, shape: bool) -> Any:
    """Rewrite one schema for checking.

    Closes objects (see module docstring) and turns Dropshot's ``nullable`` beside an
    ``allOf`` wrapper, which OAS 3.0.3 only honours next to ``type``, into an explicit
    null alternative. With ``shape`` it also drops value constraints and makes ``oneOf``
    an ``anyOf`` (name-or-id variants become indistinguishable without their patterns),
    keeping single-value enums because those are the tags of tagged unions.
    """
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "properties":
            out[key] = {name: _adapt(sub, shape) for name, sub in value.items()}
        elif key in ("allOf", "anyOf", "oneOf"):
            out["anyOf" if shape and key == "oneOf" else key] = [_adapt(s, shape) for s in value]
        elif key in ("items", "additionalProperties", "not"):
            out[key] = _adapt(value, shape)
        elif shape and (key in _VALUE_KEYWORDS or (key == "enum" and len(value) > 1)):
            continue
        else:
            out[key] = value
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    if out.get("nullable") is True and "type" not in out:
        del out["nullable"]
        return {"anyOf": [_NULL_BRANCH, out]}
    return out


def _adapt_outside(node: Any, shape: bool) -> Any:
    """Copy the non-schema parts of the document, adapting each ``schema`` found in them."""
    if isinstance(node, dict):
        return {
            k: _adapt(v, shape) if k == "schema" else _adapt_outside(v, shape)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_adapt_outside(v, shape) for v in node]
    return node


def _adapt_document(document: Mapping[str, Any], shape: bool) -> dict[str, Any]:
    components = dict(document.get("components", {}))
    schemas = components.pop("schemas", {})
    adapted = _adapt_outside({"paths": document.get("paths", {}), "components": components}, shape)
    adapted["components"]["schemas"] = {n: _adapt(s, shape) for n, s in schemas.items()}
    return dict(adapted)


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


def _where(error: ValidationError) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)


def _clip(text: str) -> str:
    return text if len(text) <= _CLIP else text[: _CLIP - 3] + "..."


def _tag_miss(error: ValidationError) -> bool:
    """Whether a union branch failed on its tag (a one-value enum), i.e. is the wrong variant."""
    return (
        error.validator == "enum"
        and isinstance(error.validator_value, list)
        and len(error.validator_value) == 1
        and len(error.path) <= 1
    )


def _describe(error: ValidationError) -> str:
    """Say where an instance fails, descending into the union branch it was meant to match."""
    while error.context:
        branches: dict[Any, list[ValidationError]] = {}
        for sub in error.context:
            if sub.validator == "enum" and sub.validator_value == [None]:
                continue  # the null alternative added by _adapt; never the interesting one
            branches.setdefault(sub.schema_path[0] if sub.schema_path else 0, []).append(sub)
        tagged = [subs for subs in branches.values() if not any(map(_tag_miss, subs))]
        pool = tagged if tagged else list(branches.values())
        depth = [max(len(e.path) for e in subs) for subs in pool]
        if not pool or depth.count(max(depth)) != 1:
            break
        error = max(pool[depth.index(max(depth))], key=lambda e: len(e.path))
    return f"{_where(error)}: {_clip(error.message)}"


def _is_json(content_type: Any) -> bool:
    return isinstance(content_type, str) and (
        content_type.split(";", 1)[0].strip().lower() == "application/json"
    )


@dataclass(frozen=True)
class Operation:
    """One method of one path template, with its JSON pointer into the document."""

    method: str
    template: str
    node: Mapping[str, Any]
    pointer: str

    @property
    def key(self) -> str:
        return f"{self.method} {self.template}"


class Spec:
    """The OpenAPI document, its routes and cached schema validators."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document
        self._formats = _format_checker()
        resources = [
            (
                uri,
                Resource.from_contents(
                    _adapt_document(document, shape), default_specification=DRAFT4
                ),
            )
            for uri, shape in ((_FULL_URI, False), (_SHAPE_URI, True))
        ]
        self._registry: Registry[Any] = Registry().with_resources(resources)
        self._validators: dict[str, Any] = {}
        self._routes = [(t.split("/"), t) for t in document.get("paths", {})]

    @classmethod
    def load(cls, path: Path) -> Spec:
        return cls(json.loads(path.read_text(encoding="utf-8")))

    def resolve(self, path: str) -> tuple[str, dict[str, str]] | None:
        """Route a request path like Dropshot: literal segments win over parameters."""
        segments = path.split("?", 1)[0].split("/")
        best: tuple[tuple[bool, ...], str, dict[str, str]] | None = None
        for parts, template in self._routes:
            if len(parts) != len(segments):
                continue
            params: dict[str, str] = {}
            for part, seg in zip(parts, segments, strict=True):
                if part.startswith("{") and seg:
                    params[part[1:-1]] = unquote(seg)
                elif part != seg:
                    break
            else:
                rank = tuple(p.startswith("{") for p in parts)
                if best is None or rank < best[0]:
                    best = (rank, template, params)
        return None if best is None else (best[1], best[2])

    def operation(self, method: str, template: str) -> Operation | None:
        node = self.document["paths"][template].get(method.lower())
        if not isinstance(node, dict):
            return None
        return Operation(
            method.upper(), template, node, f"/paths/{_escape(template)}/{method.lower()}"
        )

    def deref(self, node: Mapping[str, Any], pointer: str) -> tuple[Mapping[str, Any], str]:
        """Follow local ``$ref``s of parameters, bodies and responses, keeping the pointer."""
        while isinstance(node.get("$ref"), str) and node["$ref"].startswith("#/"):
            pointer = node["$ref"][1:]
            target: Any = self.document
            for token in pointer.split("/")[1:]:
                key = token.replace("~1", "/").replace("~0", "~")
                target = target[int(key)] if isinstance(target, list) else target[key]
            node = target
        return node, pointer

    def parameters(self, op: Operation) -> dict[tuple[str, str], tuple[Mapping[str, Any], str]]:
        found = {}
        for i, raw in enumerate(op.node.get("parameters", [])):
            param, ptr = self.deref(raw, f"{op.pointer}/parameters/{i}")
            found[(param["in"], param["name"])] = (param, ptr)
        return found

    def schema_type(self, pointer: str) -> Any:
        """The ``type`` a (possibly referenced or wrapped) schema asserts, for query coercion."""
        node, _ = self.deref({"$ref": "#" + pointer}, "")
        while "type" not in node and len(node.get("allOf", [])) == 1:
            node, _ = self.deref(node["allOf"][0], "")
        return node.get("type")

    def schema_errors(self, pointer: str, instance: Any, shape: bool = False) -> list[str]:
        uri = f"{_SHAPE_URI if shape else _FULL_URI}#{pointer}"
        validator = self._validators.get(uri)
        if validator is None:
            validator = OAS30Validator(
                {"$ref": uri}, registry=self._registry, format_checker=self._formats
            )
            self._validators[uri] = validator
        return [_describe(e) for e in validator.iter_errors(instance)]


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


def _selector_problems(
    spec: Spec, op: Operation, path_params: Mapping[str, str], query: Mapping[str, Any]
) -> list[str]:
    params = spec.parameters(op)
    project = params.get(("query", "project"))
    selectors = [n for n in path_params if n != "project"]
    if project is None or project[0].get("required") or not selectors:
        return []
    if "x-dropshot-pagination" in op.node and "page_token" in query:
        # A later page: Nexus takes the scan parameters, project included, from the token
        # and ignores them in the query, so the selector cannot be judged from the query.
        return []
    name = selectors[-1]
    if _UUID_RE.match(path_params[name]):
        if "project" in query:
            return [f"{name} given by ID together with project (Nexus answers 400)"]
    elif "project" not in query:
        return [f"{name} given by name without project (Nexus answers 400)"]
    return []


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


def _version_problems(spec: Spec, headers: Mapping[str, Any]) -> list[str]:
    """The client must pin an ``api-version`` the document describes.

    Nexus serves a request without the header at its newest version (whatever that is on a
    given rack), so a client that omits it gets shapes this document may not describe; one
    newer than the document asks for an API nobody checked the client against.
    """
    raw = headers.get("api-version")
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


def _request_problems(
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
        problems += _version_problems(spec, entry.get("request_headers") or {})
        params = spec.parameters(op)
        for name, value in path_params.items():
            _, ptr = params.get(("path", name), ({}, ""))
            problems += [f"path {name} {e}" for e in spec.schema_errors(f"{ptr}/schema", value)]
        problems += _selector_problems(spec, op, path_params, query)
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
    if not shape_only and not _is_json(content_type):
        problems.append(f"request content-type {content_type!r} is not application/json")
    errors = spec.schema_errors(ptr + _JSON_SCHEMA_PTR, body, shape=shape_only)
    return problems + [f"request body {e}" for e in errors]


def _response_problems(spec: Spec, op: Operation, entry: Mapping[str, Any]) -> list[str]:
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
    if not _is_json(content_type):
        problems.append(f"response content-type {content_type!r} is not application/json")
    if "application/json" not in content:
        return [*problems, f"document declares {', '.join(content)} for status {status}"]
    errors = spec.schema_errors(ptr + _JSON_SCHEMA_PTR, body)
    return problems + [f"response body {e}" for e in errors]


def check_entry(spec: Spec, entry: Mapping[str, Any]) -> tuple[list[str], str | None]:
    """Return the problems of one log entry and the operation ("METHOD /template") it hit."""
    method, path, status = entry.get("method"), entry.get("path"), entry.get("status")
    if not isinstance(method, str) or not isinstance(path, str):
        return ["entry lacks method or path"], None
    resolved = spec.resolve(path)
    if resolved is None:
        return [f"path {path} matches no path template of the document"], None
    template, path_params = resolved
    op = spec.operation(method, template)
    if op is None:
        return [f"{method.upper()} is not an operation of {template} in the document"], None
    problems = []
    logged = entry.get("template")
    if logged is not None and logged != template:
        problems.append(f"logged as template {logged} but the document routes it to {template}")
    problems += _response_problems(spec, op, entry)
    agent = str((entry.get("request_headers") or {}).get("user-agent", ""))
    success = isinstance(status, int) and 200 <= status < 300
    if agent.startswith(CLIENT_AGENT_PREFIX):
        refused = isinstance(status, int) and 400 <= status < 500
        problems += _request_problems(spec, op, path_params, entry, shape_only=refused)
    elif success:
        # The simulator accepted it, so it must be something a real Nexus accepts too.
        problems += [
            f"simulator accepted: {p}"
            for p in _selector_problems(spec, op, path_params, entry.get("query") or {})
        ]
    return problems, op.key


@dataclass
class Report:
    """Outcome of checking one log; ``lines`` is what the CLI prints."""

    passed: int = 0
    failed: int = 0
    client_entries: int = 0
    unanswered: int = 0
    succeeded: set[str] = field(default_factory=set)
    missing: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and not self.missing and self.passed > 0


def check_log(spec: Spec, lines: Iterable[str], require_endpoints: bool = False) -> Report:
    report = Report()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError as exc:
            entry, problems, key = None, [f"not JSON: {exc}"], None
        else:
            if isinstance(entry, dict):
                problems, key = check_entry(spec, entry)
            else:
                problems, key = ["entry is not a JSON object"], None
        entry = entry if isinstance(entry, dict) else {}
        status = entry.get("status")
        headers = entry.get("request_headers") or {}
        from_client = str(headers.get("user-agent", "")).startswith(CLIENT_AGENT_PREFIX)
        report.client_entries += from_client
        report.unanswered += status is None
        # Coverage is the client's: a test poking the simulator directly proves nothing about
        # what the plugin sends.
        if from_client and key is not None and isinstance(status, int) and 200 <= status < 300:
            report.succeeded.add(key)
        if problems:
            report.failed += 1
            head = f"#{number} {entry.get('method', '?')} {entry.get('path', '?')} {status}"
            report.lines += [f"{head}: {p}" for p in problems]
        else:
            report.passed += 1
    total = report.passed + report.failed
    if require_endpoints:
        report.missing = [k for k in REQUIRED_OPERATIONS if k not in report.succeeded]
    report.lines.append(
        f"summary: {total} entries, {report.client_entries} from the "
        f"{CLIENT_AGENT_PREFIX} client, {report.unanswered} without a response; "
        f"{len(report.succeeded)} client operations answered 2xx"
    )
    if total == 0:
        report.lines.append("FAIL: the traffic log holds no entries")
    if report.missing:
        report.lines.append("FAIL: no 2xx response in the log for: " + ", ".join(report.missing))
    report.lines.append(f"{report.passed} passed, {report.failed} failed")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("log", type=Path, help="JSONL traffic log written by the simulator")
    parser.add_argument("--openapi", type=Path, required=True, help="Oxide OpenAPI document")
    parser.add_argument(
        "--require-endpoints",
        action="store_true",
        help="fail unless the plugin's client got a 2xx answer for every "
        "operation the plugin needs",
    )
    args = parser.parse_args(argv)
    try:
        spec = Spec.load(args.openapi)
        text = args.log.read_text(encoding="utf-8")
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report = check_log(spec, text.splitlines(), args.require_endpoints)
    print("\n".join(report.lines))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
