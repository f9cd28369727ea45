"""The transport-independent request pipeline: faults, version check, routing, auth, handler,
stats and traffic log. ``server`` only moves bytes between sockets and ``App.handle``.

Order of checks follows dropshot/Nexus: API version, then route (404/405), then request
extraction (query, body: 400s), then authentication inside the handler (401), then the rules.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from oxide_sim.core import Core
from oxide_sim.error_responses import (
    ApiError,
    bad_body,
    injected,
    internal,
    method_not_allowed,
    route_not_found,
    unauthenticated,
)
from oxide_sim.faults import FaultDecision, FaultInjector
from oxide_sim.handlers_sim import sim_routes
from oxide_sim.handlers_v1 import V1_ROUTES
from oxide_sim.names import parse_api_version
from oxide_sim.releases import downgrade
from oxide_sim.routing import Request, Response, Router
from oxide_sim.sim_config import SimConfig
from oxide_sim.stats import RequestStats
from oxide_sim.traffic import TrafficLog, redact_headers

log = logging.getLogger(__name__)


@dataclass
class HttpResult:
    """What to send back; ``drop`` means close the connection without any response."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False


class App:
    def __init__(self, cfg: SimConfig, core: Core) -> None:
        self.cfg = cfg
        self.core = core
        self.faults = FaultInjector(cfg.faults)
        self.stats = RequestStats()
        path = cfg.resolved_traffic_log()
        self.traffic = TrafficLog(path) if path is not None else None
        self.v1 = Router(V1_ROUTES)
        self.sim = Router(sim_routes(self.faults, self.stats))
        self.release = cfg.played
        newest = cfg.newest_api_version
        self._max_version = parse_api_version(newest) if newest is not None else None
        self._token = cfg.token.encode()

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> HttpResult:
        request_id = str(uuid.uuid4())
        split = urlsplit(target)
        path = split.path
        query: dict[str, str] = {}
        for key, value in parse_qsl(split.query, keep_blank_values=True):
            query.setdefault(key, value)
        if path == "/sim" or path.startswith("/sim/"):
            sim_resp = self._execute(self.sim, method, path, query, headers, body, request_id)
            return self._encode(sim_resp, request_id)

        match = self.v1.match(path)
        template = match[0].template if match is not None else None
        if template is not None:
            self.stats.count(method, template)
        decision = self.faults.decide(path) if path.startswith("/v1/") else FaultDecision()
        if decision.latency_s > 0:
            time.sleep(decision.latency_s)
        resp: Response | None
        if decision.kind is not None and decision.phase == "before":
            resp = self._fault_response(decision, request_id)
        else:
            resp = self._execute(self.v1, method, path, query, headers, body, request_id)
            if decision.kind is not None:
                resp = self._fault_response(decision, request_id)
        if resp is None:
            # A dropped connection is logged too (status null): the conformance check counts
            # the requests that never got an answer.
            if self.traffic is not None:
                self._log(method, path, template, query, headers, body, None, {})
            return HttpResult(drop=True)
        result = self._encode(resp, request_id)
        if self.traffic is not None:
            self._log(method, path, template, query, headers, body, resp, result.headers)
        return result

    # ----- pipeline steps --------------------------------------------------------------------

    def _fault_response(self, decision: FaultDecision, request_id: str) -> Response | None:
        if decision.kind == "drop":
            return None
        err = injected(decision.status)
        return Response(err.status, err.body(request_id))

    def _execute(
        self,
        router: Router,
        method: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        request_id: str,
    ) -> Response:
        try:
            if router is self.v1:
                self._check_version(headers)
            match = router.match(path)
            if match is None:
                raise route_not_found()
            route, params = match
            handler = route.handlers.get(method)
            if handler is None:
                raise method_not_allowed()
            parsed = self._parse_body(headers, body) if method in route.with_body else None
            if route.authenticated:
                self._authenticate(headers)
            req = Request(self.core, method, path, params, query, parsed)
            resp = handler(req)
            if router is self.v1:
                resp.body = downgrade(self.release, route.template, resp.body)
            return resp
        except ApiError as err:
            return Response(err.status, err.body(request_id), dict(err.headers))
        except Exception:
            log.exception("internal error handling %s %s", method, path)
            failure = internal()
            return Response(failure.status, failure.body(request_id))

    def _check_version(self, headers: dict[str, str]) -> None:
        """Nexus's version policy (dropshot ``ClientSpecifiesVersionInHeader`` with
        ``on_missing(latest)``, omicron PR 9430): no header means the newest version; a header
        that is no semver, or names a version newer than the server's, is a 400 without
        ``error_code``. Releases up to v17 serve an unversioned API and ignore the header."""
        raw = headers.get("api-version")
        if raw is None or self._max_version is None:
            return  # no header: the newest version; an unversioned release ignores it
        try:
            requested = parse_api_version(raw)
        except ValueError:
            raise ApiError(
                400, None, f'bad value for header "api-version": not a semver version: {raw}'
            ) from None
        if requested > self._max_version:
            raise ApiError(400, None, f"server does not support this API version: {raw}")

    def _authenticate(self, headers: dict[str, str]) -> None:
        value = headers.get("authorization", "")
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise unauthenticated()
        if not hmac.compare_digest(token.strip().encode(), self._token):
            raise unauthenticated()

    @staticmethod
    def _parse_body(headers: dict[str, str], body: bytes) -> Any:
        ctype = headers.get("content-type", "application/json").split(";")[0].strip().lower()
        if ctype != "application/json":
            raise ApiError(400, None, f'expected content type "application/json", got "{ctype}"')
        if not body:
            raise bad_body("EOF while parsing a value at line 1 column 0")
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise bad_body(str(exc)) from None

    # ----- output ----------------------------------------------------------------------------

    @staticmethod
    def _encode(resp: Response, request_id: str) -> HttpResult:
        headers = {"x-request-id": request_id, **resp.headers}
        if resp.status == 204 or resp.body is None:
            return HttpResult(resp.status, b"", headers)
        headers["content-type"] = "application/json"
        return HttpResult(resp.status, json.dumps(resp.body).encode(), headers)

    def _log(
        self,
        method: str,
        path: str,
        template: str | None,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        resp: Response | None,
        response_headers: dict[str, str],
    ) -> None:
        assert self.traffic is not None
        try:
            request_body = json.loads(body) if body else None
        except (ValueError, UnicodeDecodeError):
            request_body = None
        self.traffic.write(
            {
                "method": method,
                "path": path,
                "template": template,
                "query": query,
                "request_headers": redact_headers(headers),
                "request_body": request_body,
                "status": None if resp is None else resp.status,
                "response_body": None if resp is None or resp.status == 204 else resp.body,
                "response_headers": {k.lower(): v for k, v in response_headers.items()},
                # The conformance check holds each exchange against the played release's
                # document (releases up to v17 have their own).
                "release": self.release.name,
            }
        )
