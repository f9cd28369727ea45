"""dropshot-style pagination: ``limit``, ``page_token``, ``sort_by`` and ``next_page``.

Faithful points that clients trip over:
- ``next_page`` is set whenever a page is non-empty, even a short last page, so a client must
  stop on an *empty* page (or a missing ``next_page``), not on a short one;
- ``limit`` defaults to 100 and is silently clamped to 10000; 0 or garbage is a 400;
- the page token carries the scan parameters (sort order and project), so later pages ignore
  ``sort_by``/``project`` in the query; a token that does not decode is a 400.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from oxide_sim.error_responses import bad_query

DEFAULT_LIMIT = 100
MAX_LIMIT = 10000
SORT_MODES = ("name_ascending", "name_descending", "id_ascending")

_T = TypeVar("_T")


@dataclass(frozen=True)
class ListParams:
    limit: int
    sort_by: str
    project: str | None
    #: Sort key of the last item of the previous page (None on the first page).
    marker: str | None


def parse_limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    try:
        value = int(raw)
    except ValueError:
        raise bad_query(f"invalid digit found in string for field `limit`: {raw!r}") from None
    if value < 1:
        raise bad_query("invalid value: integer `0`, expected a nonzero u32")
    if value > 2**32 - 1:
        raise bad_query("number too large to fit in target type")
    return min(value, MAX_LIMIT)


def encode_token(sort_by: str, project: str | None, marker: str) -> str:
    page_start = {"sort_by": sort_by, "project": project, "last_seen": marker}
    raw = json.dumps({"v": "v1", "page_start": page_start}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_token(token: str) -> tuple[str, str | None, str]:
    try:
        padded = token + "=" * (-len(token) % 4)
        data: Any = json.loads(base64.urlsafe_b64decode(padded.encode()))
        page_start = data["page_start"]
        sort_by = page_start["sort_by"]
        project = page_start.get("project")
        marker = page_start["last_seen"]
        if data.get("v") != "v1" or sort_by not in SORT_MODES or not isinstance(marker, str):
            raise ValueError("bad token contents")
        if project is not None and not isinstance(project, str):
            raise ValueError("bad token contents")
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise bad_query("failed to parse pagination token: corrupted token") from None
    return sort_by, project, marker


def parse_list_query(query: dict[str, str], *, project_required: bool) -> ListParams:
    limit = parse_limit(query.get("limit"))
    token = query.get("page_token")
    if token:
        sort_by, project, marker = decode_token(token)
        return ListParams(limit=limit, sort_by=sort_by, project=project, marker=marker)
    sort_by = query.get("sort_by") or "name_ascending"
    if sort_by not in SORT_MODES:
        raise bad_query(
            f"unknown variant `{sort_by}`, expected one of `name_ascending`, "
            "`name_descending`, `id_ascending`"
        )
    project = query.get("project")
    if project_required and not project:
        raise bad_query("missing field `project`")
    return ListParams(limit=limit, sort_by=sort_by, project=project or None, marker=None)


def paginate(
    items: Sequence[_T],
    params: ListParams,
    key: Callable[[_T], tuple[str, str]],
    render: Callable[[_T], dict[str, Any]],
) -> dict[str, Any]:
    """One page of ``items``; ``key`` returns (name, id) of an item."""
    if params.sort_by == "id_ascending":
        ordered = sorted(items, key=lambda it: key(it)[1])
        after = [it for it in ordered if params.marker is None or key(it)[1] > params.marker]
        pick = 1
    elif params.sort_by == "name_descending":
        ordered = sorted(items, key=lambda it: key(it)[0], reverse=True)
        after = [it for it in ordered if params.marker is None or key(it)[0] < params.marker]
        pick = 0
    else:
        ordered = sorted(items, key=lambda it: key(it)[0])
        after = [it for it in ordered if params.marker is None or key(it)[0] > params.marker]
        pick = 0
    page = after[: params.limit]
    next_page = None
    if page:
        next_page = encode_token(params.sort_by, params.project, key(page[-1])[pick])
    return {"items": [render(it) for it in page], "next_page": next_page}
