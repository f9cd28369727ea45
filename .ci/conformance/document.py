"""The OpenAPI document: routing request paths, following ``$ref``s, validating values.

Why: every check needs the operation a logged path hits (routed the way Dropshot routes it,
not the way the simulator claims it did) and validators for the schemas at JSON pointers
into the document; building a validator is slow, so ``Spec`` caches one per pointer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from .messages import describe
from .schemas import adapt_document, format_checker

_FULL_URI = "urn:oxide-openapi:full"
_SHAPE_URI = "urn:oxide-openapi:shape"
#: The first API version of the versioned Nexus API; older documents are of racks that ignore
#: the ``api-version`` header.
FIRST_VERSIONED_API = 2025112000
# Pointer from a request body or response object to its JSON schema.
JSON_SCHEMA_PTR = "/content/application~1json/schema"


def is_json(content_type: Any) -> bool:
    """Whether a logged content-type header names JSON (parameters such as charset aside)."""
    return isinstance(content_type, str) and (
        content_type.split(";", 1)[0].strip().lower() == "application/json"
    )


def _escape(token: str) -> str:
    return token.replace("~", "~0").replace("/", "~1")


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
        self._formats = format_checker()
        resources = [
            (
                uri,
                Resource.from_contents(
                    adapt_document(document, shape), default_specification=DRAFT4
                ),
            )
            for uri, shape in ((_FULL_URI, False), (_SHAPE_URI, True))
        ]
        self._registry: Registry[Any] = Registry().with_resources(resources)
        self._validators: dict[str, Any] = {}
        self._routes = [(t.split("/"), t) for t in document.get("paths", {})]

    @property
    def versioned(self) -> bool:
        """Whether the document's Nexus honours ``api-version`` (API 2025112000.0.0, v18, on)."""
        raw = str(self.document.get("info", {}).get("version", ""))
        head = raw.split(".", 1)[0]
        return not head.isdigit() or int(head) >= FIRST_VERSIONED_API

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
        return [describe(e) for e in validator.iter_errors(instance)]
