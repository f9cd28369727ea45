"""Judge one logged exchange: route it, then check the answer and, by sender, the request.

Why: the log mixes the plugin's client with tests that poke the simulator directly; only the
client's requests speak for what the plugin sends, while every answer speaks for the
simulator. Raw test traffic the simulator accepted must still be something Nexus accepts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .document import Spec
from .project_selectors import selector_problems
from .request_checks import request_problems
from .response_checks import response_problems

CLIENT_AGENT_PREFIX = "oxide-csi/"


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
    problems += response_problems(spec, op, entry)
    agent = str((entry.get("request_headers") or {}).get("user-agent", ""))
    success = isinstance(status, int) and 200 <= status < 300
    if agent.startswith(CLIENT_AGENT_PREFIX):
        refused = isinstance(status, int) and 400 <= status < 500
        problems += request_problems(spec, op, path_params, entry, shape_only=refused)
    elif success:
        # The simulator accepted it, so it must be something a real Nexus accepts too.
        problems += [
            f"simulator accepted: {p}"
            for p in selector_problems(spec, op, path_params, entry.get("query") or {})
        ]
    return problems, op.key
