"""Checking an object before it is stored, in the order and with the codes of the real server.

1. Decoding (400 BadRequest): JSON types, unknown fields (refused as ``fieldValidation=Strict``
   does), and the time formats of ``metav1.Time`` (RFC 3339) and ``metav1.MicroTime`` (Go
   layout ``2006-01-02T15:04:05.000000Z07:00``: exactly six fractional digits). Times are
   re-written in UTC as the server's round trip does.
2. Schema (422 Invalid): Kubernetes' own OpenAPI schemas via ``kubernetes-validate``, so
   kube_sim cannot drift into accepting what a real server refuses.
3. The rules the schemas leave out (422 Invalid): names, labels, annotations, ConfigMap keys
   and size, Lease spec bounds, Event consistency (``ValidateEventCreate``).
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime
from typing import Any

import jsonschema
from kubernetes_validate import utils as kv_utils
from packaging.version import Version
from referencing import Registry
from referencing import Resource as Resource_

from kube_sim import names
from kube_sim.errors import ApiError, bad_request, field_invalid, field_required, invalid
from kube_sim.resources import Resource

_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
_MICRO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}(Z|[+-]\d{2}:\d{2})$")
_MICRO_LAYOUT = "2006-01-02T15:04:05.000000Z07:00"

_COMMON_TIMES = ("metadata.creationTimestamp", "metadata.deletionTimestamp")
_TIME_FIELDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("v1", "Event"): ("firstTimestamp", "lastTimestamp"),
    ("events.k8s.io/v1", "Event"): ("deprecatedFirstTimestamp", "deprecatedLastTimestamp"),
}
_MICRO_FIELDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("coordination.k8s.io/v1", "Lease"): ("spec.acquireTime", "spec.renewTime"),
    ("v1", "Event"): ("eventTime", "series.lastObservedTime"),
    ("events.k8s.io/v1", "Event"): ("eventTime", "series.lastObservedTime"),
}
_MAX_CONFIG_MAP_BYTES = 1024 * 1024
_MAX_ANNOTATION_BYTES = 256 * 1024


def check(res: Resource, obj: dict[str, Any], stored: dict[str, Any], kube_version: str) -> None:
    """Check the schema of ``obj`` as sent, then the semantic rules on ``stored``, the shape
    it will be kept in (they differ for events.k8s.io Events). Run ``decode_times`` first."""
    _schema(res, obj, kube_version)
    causes = _meta(res, stored) + _kind_rules(res, stored)
    if causes:
        meta = stored.get("metadata") or {}
        raise invalid(res.kind, meta.get("name") or meta.get("generateName", ""), res.group, causes)


def decode_times(res: Resource, obj: dict[str, Any]) -> None:
    key = (res.api_version, res.kind)
    for path in _COMMON_TIMES + _TIME_FIELDS.get(key, ()):
        _rewrite_time(res, obj, path, micro=False)
    for path in _MICRO_FIELDS.get(key, ()):
        _rewrite_time(res, obj, path, micro=True)


def _rewrite_time(res: Resource, obj: dict[str, Any], path: str, *, micro: bool) -> None:
    *parents, leaf = path.split(".")
    holder: Any = obj
    for part in parents:
        holder = holder.get(part) if isinstance(holder, dict) else None
    if not isinstance(holder, dict) or leaf not in holder:
        return
    value = holder[leaf]
    if value is None:
        del holder[leaf]
        return
    pattern = _MICRO if micro else _TIME
    if not isinstance(value, str) or not pattern.match(value):
        layout = _MICRO_LAYOUT if micro else "2006-01-02T15:04:05Z07:00"
        raise bad_request(
            f'{res.kind} in version "{res.version}" cannot be handled as a {res.kind}: '
            f'parsing time "{value}" as "{layout}": cannot parse "{value}" as "{layout}"'
        )
    when = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)
    holder[leaf] = when.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ")


def _field_path(path: Any) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out.lstrip(".")


@functools.cache
def _validator(api_version: str, kind: str, kube_version: str) -> Any:
    """The validator ``kubernetes_validate.validate(strict=True)`` builds on every call, built
    once per kind: the same schema files and registry, without re-reading the large
    definitions file for each write (10 ms a write, under the store's lock, otherwise)."""
    wanted = Version(kv_utils.major_minor(kube_version))
    version = [v for v in kv_utils.all_versions() if Version(kv_utils.major_minor(v)) <= wanted][-1]
    schema_dir = f"kubernetes-json-schema/v{version}-local-strict"
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema = kv_utils.schema_contents(
        f"{schema_dir}/{kind.lower()}-{group_version}.json", kube_version
    )
    definitions = kv_utils.schema_contents(f"{schema_dir}/_definitions.json", kube_version)
    registry = Resource_.from_contents(definitions) @ (Resource_.from_contents(schema) @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def _schema(res: Resource, obj: dict[str, Any], kube_version: str) -> None:
    try:
        _validator(res.api_version, res.kind, kube_version).validate(obj)
    except jsonschema.ValidationError as e:
        raise _schema_error(res, obj, e) from None


def _schema_error(res: Resource, obj: dict[str, Any], e: Any) -> ApiError:
    path = _field_path(e.path)
    name = (obj.get("metadata") or {}).get("name", "")
    if e.validator == "additionalProperties":
        unknown = re.findall(r"'([^']+)'", e.message.split("(", 1)[-1])
        fields = ", ".join(f'unknown field "{_field_path([*e.path, u])}"' for u in unknown)
        return bad_request(f"strict decoding error: {fields}")
    if e.validator == "type":
        return bad_request(
            f'{res.kind} in version "{res.version}" cannot be handled as a {res.kind}: '
            f"json: cannot unmarshal {type(e.instance).__name__} into Go struct field "
            f"{path or res.kind} of type {_go_type(e.schema)}"
        )
    if e.validator == "required":
        missing = re.findall(r"'([^']+)'", e.message)[:1] or [""]
        field = f"{path}.{missing[0]}" if path else missing[0]
        return invalid(res.kind, name, res.group, [field_required(field)])
    return invalid(res.kind, name, res.group, [field_invalid(path, e.instance, e.message)])


def _go_type(schema: dict[str, Any]) -> str:
    types = schema.get("type")
    names = [t for t in types if t != "null"] if isinstance(types, list) else [types]
    go = {"integer": "int64", "object": "map", "array": "slice", "boolean": "bool"}
    return str(schema.get("format") or go.get(str(names[0]), str(names[0])))


def _meta(res: Resource, obj: dict[str, Any]) -> list[dict[str, str]]:
    meta = obj.get("metadata") or {}
    causes: list[dict[str, str]] = []
    name = meta.get("name", "")
    if not name:
        causes.append(field_required("metadata.name", "name or generateName is required"))
    else:
        check_name = names.dns1123_label if res.name_rule == "label" else names.dns1123_subdomain
        causes += [field_invalid("metadata.name", name, m) for m in check_name(name)]
    if res.namespaced and not meta.get("namespace"):
        causes.append(field_required("metadata.namespace"))
    for key, value in (meta.get("labels") or {}).items():
        causes += [field_invalid("metadata.labels", key, m) for m in names.qualified_name(key)]
        causes += [field_invalid("metadata.labels", value, m) for m in names.label_value(value)]
    annotations = meta.get("annotations") or {}
    for key in annotations:
        causes += [
            field_invalid("metadata.annotations", key, m.lower()) for m in names.qualified_name(key)
        ]
    if sum(len(k) + len(v) for k, v in annotations.items()) > _MAX_ANNOTATION_BYTES:
        causes.append(
            {
                "reason": "FieldValueTooLong",
                "message": f"Too long: must have at most {_MAX_ANNOTATION_BYTES} bytes",
                "field": "metadata.annotations",
            }
        )
    return causes


def _kind_rules(res: Resource, obj: dict[str, Any]) -> list[dict[str, str]]:
    if res.kind == "ConfigMap":
        return _config_map(obj)
    if res.kind == "Lease":
        return _lease(obj.get("spec") or {})
    if res.kind == "Event":
        return _event(res, obj)
    return []


def _config_map(obj: dict[str, Any]) -> list[dict[str, str]]:
    causes: list[dict[str, str]] = []
    data = obj.get("data") or {}
    binary = obj.get("binaryData") or {}
    for section, entries in (("data", data), ("binaryData", binary)):
        for key in entries:
            causes += [
                field_invalid(f"{section}[{key}]", key, m) for m in names.config_map_key(key)
            ]
    for key in set(data) & set(binary):
        causes.append(field_invalid(f"data[{key}]", key, "duplicate of key present in binaryData"))
    size = sum(len(k) + len(v.encode()) for k, v in data.items())
    size += sum(len(k) + len(v) * 3 // 4 for k, v in binary.items())
    if size > _MAX_CONFIG_MAP_BYTES:
        causes.append(
            {
                "reason": "FieldValueTooLong",
                "message": f"Too long: must have at most {_MAX_CONFIG_MAP_BYTES} bytes",
                "field": "[]",
            }
        )
    return causes


def _lease(spec: dict[str, Any]) -> list[dict[str, str]]:
    causes: list[dict[str, str]] = []
    duration = spec.get("leaseDurationSeconds")
    if duration is not None and duration <= 0:
        causes.append(
            field_invalid("spec.leaseDurationSeconds", duration, "must be greater than 0")
        )
    transitions = spec.get("leaseTransitions")
    if transitions is not None and transitions < 0:
        causes.append(
            field_invalid(
                "spec.leaseTransitions", transitions, "must be greater than or equal to 0"
            )
        )
    if spec.get("preferredHolder") and not spec.get("strategy"):
        causes.append(
            field_invalid(
                "spec.preferredHolder",
                spec["preferredHolder"],
                "preferredHolder can only be set if strategy is set",
            )
        )
    return causes


def _event(res: Resource, obj: dict[str, Any]) -> list[dict[str, str]]:
    """``ValidateEventCreate``: ``obj`` is in core/v1 shape whichever API wrote it."""
    causes: list[dict[str, str]] = []
    namespace = (obj.get("metadata") or {}).get("namespace", "")
    involved_ns = (obj.get("involvedObject") or {}).get("namespace", "")
    controller_field = "reportingComponent" if res.group == "" else "reportingController"

    def invalid_value(path: str, value: object, detail: str) -> None:
        causes.append(field_invalid(path, value, detail))

    if not obj.get("eventTime"):
        if (involved_ns or namespace not in ("", "default")) and namespace != involved_ns:
            invalid_value("involvedObject.namespace", involved_ns, "does not match event.namespace")
    else:
        if not involved_ns and namespace not in ("default", "kube-system"):
            invalid_value("involvedObject.namespace", involved_ns, "does not match event.namespace")
        controller = obj.get("reportingComponent", "")
        if not controller:
            causes.append(field_required(controller_field))
        else:
            for m in names.qualified_name(controller):
                invalid_value(controller_field, controller, m)
        for path, limit in (("reportingInstance", 128), ("action", 128), ("reason", 128)):
            if not obj.get(path):
                causes.append(field_required(path))
            elif len(obj[path]) > limit:
                invalid_value(path, "", f"can have at most {limit} characters")
        if len(obj.get("message", "")) > 1024:
            invalid_value("message", "", "can have at most 1024 characters")
    if res.group == "":
        return causes
    series = obj.get("series")
    if series is not None:
        if series.get("count", 0) < 2:
            invalid_value("series.count", "", "should be at least 2")
        if not series.get("lastObservedTime"):
            causes.append(field_required("series.lastObservedTime"))
    if not obj.get("eventTime"):
        causes.append(field_required("eventTime"))
    if obj.get("type") not in ("Normal", "Warning"):
        invalid_value("type", "", f"has invalid value: {obj.get('type', '')}")
    for path in ("firstTimestamp", "lastTimestamp", "count", "source"):
        if obj.get(path):
            invalid_value(path, "", "needs to be unset")
    return causes
