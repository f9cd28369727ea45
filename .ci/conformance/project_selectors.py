"""The rule for ``{resource}`` path selectors that Nexus enforces beside the document.

Why: the document marks ``project`` optional on operations like ``GET /v1/disks/{disk}``, but
Nexus answers 400 when a selector given by name lacks ``project`` or one given by UUID has
it. Both the client's requests and whatever the simulator accepted must obey this.

Images are the exception: an image is a project's or the silo's, and a name without
``project`` selects the silo image of that name (Nexus's image lookup), so it is no error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .document import Operation, Spec

#: Selectors whose name alone selects a silo-wide resource.
_SILO_SCOPED = frozenset({"image"})
_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$")


def selector_problems(
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
    silo_scoped = name in _SILO_SCOPED
    if _UUID_RE.match(path_params[name]):
        if "project" in query:
            return [f"{name} given by ID together with project (Nexus answers 400)"]
    elif "project" not in query and not silo_scoped:
        return [f"{name} given by name without project (Nexus answers 400)"]
    return []
