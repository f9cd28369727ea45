"""Rewrite the document's schemas into the ones the check validates against.

Why: the document is written for Dropshot's OAS 3.0 reading, which leaves objects open and
puts ``nullable`` where a JSON Schema validator ignores it. The check wants objects closed
(see the package docstring) and a null allowed exactly where the document allows it, and for
refused requests a second, shape-only reading that ignores value constraints.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from jsonschema import FormatChecker
from openapi_schema_validator import oas30_format_checker

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
NULL_BRANCH: dict[str, Any] = {"enum": [None]}


def _int_range(low: int, high: int) -> Callable[[object], bool]:
    def check(instance: object) -> bool:
        if isinstance(instance, bool) or not isinstance(instance, int):
            return True
        return low <= instance <= high

    return check


def format_checker() -> FormatChecker:
    """OAS 3.0 formats (uuid, date-time, ...) plus the Rust integer widths the document uses."""
    checker = FormatChecker(formats=())
    checker.checkers.update(oas30_format_checker.checkers)
    for bits in (8, 16, 32, 64):
        checker.checks(f"uint{bits}")(_int_range(0, 2**bits - 1))
        checker.checks(f"int{bits}")(_int_range(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1))
    checker.checks("uint")(_int_range(0, 2**64 - 1))
    return checker


def adapt(schema: Any, shape: bool) -> Any:
    """Rewrite one schema for checking.

    Closes objects (see the package docstring) and turns Dropshot's ``nullable`` beside an
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
            out[key] = {name: adapt(sub, shape) for name, sub in value.items()}
        elif key in ("allOf", "anyOf", "oneOf"):
            out["anyOf" if shape and key == "oneOf" else key] = [adapt(s, shape) for s in value]
        elif key in ("items", "additionalProperties", "not"):
            out[key] = adapt(value, shape)
        elif shape and (key in _VALUE_KEYWORDS or (key == "enum" and len(value) > 1)):
            continue
        else:
            out[key] = value
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    if out.get("nullable") is True and "type" not in out:
        del out["nullable"]
        return {"anyOf": [NULL_BRANCH, out]}
    return out


def _adapt_outside(node: Any, shape: bool) -> Any:
    """Copy the non-schema parts of the document, adapting each ``schema`` found in them."""
    if isinstance(node, dict):
        return {
            k: adapt(v, shape) if k == "schema" else _adapt_outside(v, shape)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_adapt_outside(v, shape) for v in node]
    return node


def adapt_document(document: Mapping[str, Any], shape: bool) -> dict[str, Any]:
    """The paths and components of ``document`` with every schema adapted."""
    components = dict(document.get("components", {}))
    schemas = components.pop("schemas", {})
    adapted = _adapt_outside({"paths": document.get("paths", {}), "components": components}, shape)
    adapted["components"]["schemas"] = {n: adapt(s, shape) for n, s in schemas.items()}
    return dict(adapted)
