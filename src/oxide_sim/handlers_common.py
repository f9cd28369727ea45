"""Parsing helpers shared by the /v1 handlers: selectors from the path and the query."""

from __future__ import annotations

from urllib.parse import unquote

from oxide_sim.core import NameOrId
from oxide_sim.error_responses import bad_path, bad_query
from oxide_sim.names import parse_name_or_id
from oxide_sim.paged_lists import ListParams, parse_list_query
from oxide_sim.routing import Request


def path_sel(req: Request, key: str) -> NameOrId:
    try:
        return parse_name_or_id(unquote(req.params[key]))
    except ValueError as exc:
        raise bad_path(f"{key}: {exc}") from None


def query_sel(req: Request, key: str = "project") -> NameOrId | None:
    raw = req.query.get(key)
    if raw is None:
        return None
    try:
        return parse_name_or_id(raw)
    except ValueError as exc:
        raise bad_query(f"{key}: {exc}") from None


def required_project(req: Request) -> NameOrId:
    sel = query_sel(req)
    if sel is None:
        raise bad_query("missing field `project`")
    return sel


def list_params(req: Request, *, project_required: bool) -> tuple[ListParams, NameOrId | None]:
    """Pagination parameters plus the project they are scoped to (from the token if any)."""
    params = parse_list_query(req.query, project_required=project_required)
    project: NameOrId | None = None
    if params.project is not None:
        try:
            project = parse_name_or_id(params.project)
        except ValueError as exc:
            raise bad_query(f"project: {exc}") from None
    return params, project
