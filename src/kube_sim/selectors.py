"""Label and field selectors, parsed and matched as apimachinery's ``labels``/``fields`` do.

Label selectors: ``k``, ``!k``, ``k=v``, ``k==v``, ``k!=v``, ``k in (a,b)``, ``k notin (a,b)``,
``k>n``, ``k<n``, joined by commas (ANDed). ``!=`` and ``notin`` also match objects without
the key. Field selectors: ``f=v``, ``f==v``, ``f!=v`` over the resource's supported field labels.
Syntax errors and unsupported fields raise 400 BadRequest, like the real server.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from kube_sim import names
from kube_sim.errors import bad_request

Matcher = Callable[[dict[str, Any]], bool]

_SET_REQ = re.compile(r"^\s*(!?)\s*([^\s!=<>(),]+)\s+(in|notin)\s*\(([^()]*)\)\s*$")
_OP_REQ = re.compile(r"^\s*([^\s!=<>(),]+)\s*(==|=|!=|>|<)\s*([^\s!=<>(),]*)\s*$")
_EXISTS_REQ = re.compile(r"^\s*(!?)\s*([^\s!=<>(),]+)\s*$")


def _split(selector: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, current = [], 0, ""
    for ch in selector:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    return [p for p in parts if p.strip()] if selector.strip() else []


def _check_key(key: str) -> None:
    errs = names.qualified_name(key)
    if errs:
        raise bad_request(f'unable to parse requirement: Invalid value: "{key}": {errs[0]}')


def _check_value(value: str) -> None:
    errs = names.label_value(value)
    if errs:
        raise bad_request(f'unable to parse requirement: Invalid value: "{value}": {errs[0]}')


def _requirement(text: str) -> Matcher:
    if m := _SET_REQ.match(text):
        if m.group(1):
            raise bad_request(f"unable to parse requirement: {text.strip()}")
        key, op = m.group(2), m.group(3)
        values = {v.strip() for v in m.group(4).split(",") if v.strip()}
        _check_key(key)
        for v in values:
            _check_value(v)
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if m := _OP_REQ.match(text):
        key, op, value = m.groups()
        _check_key(key)
        if op in (">", "<"):
            return _numeric(key, op, value)
        _check_value(value)
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if m := _EXISTS_REQ.match(text):
        negate, key = m.groups()
        _check_key(key)
        if negate:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise bad_request(f"unable to parse requirement: found '{text.strip()}', expected: identifier")


def _numeric(key: str, op: str, value: str) -> Matcher:
    try:
        bound = int(value)
    except ValueError:
        raise bad_request(
            f'unable to parse requirement: Invalid value: "{value}": '
            "for 'Gt', 'Lt' operators, the value must be an integer"
        ) from None

    def match(labels: dict[str, Any]) -> bool:
        try:
            have = int(labels[key])
        except (KeyError, ValueError):
            return False
        return have > bound if op == ">" else have < bound

    return match


def label_selector(selector: str | None) -> Matcher:
    """A matcher over an object's ``metadata.labels``."""
    reqs = [_requirement(p) for p in _split(selector or "")]

    def match(obj: dict[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(r(labels) for r in reqs)

    return match


def _field_value(obj: dict[str, Any], path: str) -> str:
    if path == "source":  # core/v1 Event: the reporting component
        return str((obj.get("source") or {}).get("component", ""))
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def field_selector(selector: str | None, supported: tuple[str, ...]) -> Matcher:
    """A matcher over the field labels in ``supported``; others raise 400 as the server does."""
    reqs: list[tuple[str, bool, str]] = []
    for part in _split(selector or ""):
        m = re.match(r"^\s*([^\s!=]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if not m:
            raise bad_request(f"invalid selector: '{selector}'; can't understand '{part}'")
        path, op, value = m.groups()
        if path not in supported:
            raise bad_request(f"field label not supported: {path}")
        reqs.append((path, op != "!=", value))

    def match(obj: dict[str, Any]) -> bool:
        return all((_field_value(obj, p) == v) == eq for p, eq, v in reqs)

    return match
