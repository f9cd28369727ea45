"""Validation of the scalar types Nexus checks while deserializing a request.

``Name``: the OpenAPI pattern admits upper-case letters after the first character, but Nexus's
``Name::try_from`` rejects them, so this follows Nexus. The messages mirror omicron's wording.
Failures raise ``ValueError``; the caller decides whether it was a body, query or path problem
(dropshot words each differently).
"""

from __future__ import annotations

import re
import uuid

MAX_NAME_LEN = 63
_UUID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_ALLOWED = set("abcdefghijklmnopqrstuvwxyz0123456789-")


def is_uuid(value: str) -> bool:
    return bool(_UUID_RE.match(value))


def check_name(value: object) -> str:
    """Return ``value`` if it is a valid Oxide ``Name``, else raise ValueError."""
    if not isinstance(value, str):
        raise ValueError("invalid type: expected a string for a name")
    if not value:
        raise ValueError("name requires at least one character")
    if len(value) > MAX_NAME_LEN:
        raise ValueError(f"name may contain at most {MAX_NAME_LEN} characters")
    if not ("a" <= value[0] <= "z"):
        raise ValueError("name must begin with an ASCII lowercase character")
    for ch in value:
        if ch not in _ALLOWED:
            raise ValueError(
                f'name contains invalid character: "{ch}" (allowed characters are lowercase '
                'ASCII, digits, and "-")'
            )
    if value.endswith("-"):
        raise ValueError('name cannot end with "-"')
    if is_uuid(value):
        raise ValueError("name cannot be a UUID to avoid ambiguity with IDs")
    return value


def parse_name_or_id(value: object) -> tuple[str, str]:
    """Classify a ``NameOrId``: returns ("id", canonical-uuid) or ("name", name)."""
    if isinstance(value, str) and is_uuid(value):
        return "id", str(uuid.UUID(value))
    try:
        return "name", check_name(value)
    except ValueError as exc:
        raise ValueError(f"value is neither a UUID nor a valid name: {exc}") from None


def parse_uuid(value: object) -> str:
    if isinstance(value, str) and is_uuid(value):
        return str(uuid.UUID(value))
    raise ValueError(f"invalid UUID: {value!r}")


_UNITS = (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10))


def byte_count(n: int) -> str:
    """Nexus's ``ByteCount`` display: the largest binary unit that divides it exactly."""
    for unit, size in _UNITS:
        if n >= size and n % size == 0:
            return f"{n // size} {unit}"
    return f"{n} B"


def parse_api_version(value: str) -> tuple[int, int, int]:
    """Parse a semver ``MAJOR.MINOR.PATCH`` API version (pre-release parts are not used)."""
    parts = value.strip().split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"invalid API version: {value!r}")
    return int(parts[0]), int(parts[1]), int(parts[2])
