"""Oxide's ``NameOrId`` selector rules.

A resource is named either by UUID (globally unique, so the API *refuses* a ``project`` next to
it) or by name (unique only within a project, so ``?project=`` is required). Getting this wrong
is a 400 from a real rack, so every endpoint method goes through these two helpers.
"""

from __future__ import annotations

import re
import uuid
from urllib.parse import quote

from oxide_csi.oxide.api_errors import OxideInvalidRequest

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

NameOrId = str | uuid.UUID


def normalize(value: NameOrId) -> str:
    """The selector as the string the API takes; rejects what can never be a name or id.

    Dot segments are refused here because an HTTP stack may collapse ``/v1/disks/..`` into
    ``/v1/`` -- a different endpoint -- before the server ever sees the name.
    """
    text = str(value)
    if not text or text in (".", "..") or any(c.isspace() for c in text):
        raise OxideInvalidRequest(f"not a valid name or id: {text!r}")
    return text


def is_uuid(value: NameOrId) -> bool:
    """True for the hyphenated UUID form, the only form the ``Name`` pattern excludes."""
    return isinstance(value, uuid.UUID) or bool(_UUID.match(value))


def project_query(value: NameOrId, project: str) -> dict[str, str]:
    """The query that goes with a selector: nothing for a UUID, ``project`` for a name."""
    return {} if is_uuid(value) else {"project": project}


def path_segment(value: NameOrId) -> str:
    """The selector percent-encoded for use as one path segment."""
    return quote(normalize(value), safe="")
