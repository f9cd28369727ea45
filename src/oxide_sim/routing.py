"""Route matching by OpenAPI path template.

The template (e.g. ``/v1/disks/{disk}``) is what the stats and the traffic log key on, so the
matcher returns it along with the path parameters. Like dropshot, an unknown path is a 404 and
a known path with an unserved method is a 405.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from oxide_sim.core import Core


@dataclass
class Request:
    core: Core
    method: str
    path: str
    params: dict[str, str]
    query: dict[str, str]
    body: Any = None


@dataclass
class Response:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Response]


@dataclass
class Route:
    template: str
    handlers: dict[str, Handler]
    #: Methods whose request carries a JSON body.
    with_body: frozenset[str] = frozenset()
    #: Whether the route requires a bearer token (the /sim test hooks do not).
    authenticated: bool = True
    regex: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        pattern = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.template))
        self.regex = re.compile(f"^{pattern}$")


class Router:
    def __init__(self, routes: list[Route]) -> None:
        self.routes = routes

    def match(self, path: str) -> tuple[Route, dict[str, str]] | None:
        for route in self.routes:
            m = route.regex.match(path)
            if m is not None:
                return route, m.groupdict()
        return None
