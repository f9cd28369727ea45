"""HTTP plumbing for the Oxide API: one pooled ``httpx.AsyncClient``, auth, retries, metrics hook.

Every request goes through ``Transport.request``, which owns the whole retry loop so that the
rules live in one place:

* every attempt is bounded by ``request_timeout`` and by the caller's deadline, the whole loop
  by ``max_attempts`` and the deadline; giving up raises the last typed error, or ``OxideTimeout``
  when it was the deadline that ran out;
* between attempts we sleep a full-jitter exponential backoff, or the server's ``Retry-After``
  on 429 when it sent one (never past the deadline);
* ``Safety.SAFE`` requests are retried on any transient failure; ``Safety.CREATE`` and
  ``Safety.TRANSITION`` requests only when the failure proves nothing happened, otherwise the
  caller's *resolver* looks the resource up first (see ``Transport.request``).

The bearer token is set on each request by an auth hook from its :class:`TokenSource` (a token
file is read again when it changes); nothing here formats headers into a message or a log line,
and server text is scrubbed of the token before it becomes an error. Proxies follow the
standard environment variables (``HTTPS_PROXY``, ``NO_PROXY``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from oxide_csi.oxide import api_errors
from oxide_csi.oxide.client_config import OxideConfig
from oxide_csi.oxide.retry import (
    CREATE_RETRY_DIRECTLY,
    RESOLVABLE_STATUSES,
    Safety,
    Verdict,
    backoff_delay,
    verdict_for_exception,
    verdict_for_status,
)
from oxide_csi.oxide.token import TokenSource

#: The longest ``Retry-After`` we honour between two attempts, in seconds.
MAX_RETRY_AFTER = 60.0

_log = logging.getLogger(__name__)

#: ``on_request(method, template, status, seconds, attempt)``; status None when no response came.
RequestObserver = Callable[[str, str, int | None, float, int], None]

#: Below this much time left there is no point in starting an attempt.
_MIN_ATTEMPT_SECONDS = 0.001


@dataclass(frozen=True)
class _Sent:
    """What one request sends besides its method and path."""

    query: Mapping[str, str | int] | None
    body: Any
    headers: Mapping[str, str] | None


@dataclass(frozen=True)
class Resolved:
    """A resolver's finding that the request's effect is already in place; ``value`` is the
    result to return as if the request had succeeded (the parsed JSON of the resource)."""

    value: Any


#: Looks at the server's state after an ambiguous failure (given the error that prompted the
#: look). Returns ``Resolved`` when the wanted outcome is there, None when it is not (so a retry
#: may go ahead, or the error stands), or raises.
Resolver = Callable[[api_errors.OxideError], Awaitable[Resolved | None]]


def _ssl_context(cfg: OxideConfig) -> ssl.SSLContext | bool:
    """The system's CAs, plus ``ca_file`` for a rack with a private CA."""
    if cfg.insecure:
        return False
    if cfg.ca_file:
        context = ssl.create_default_context()
        context.load_verify_locations(cafile=cfg.ca_file)
        return context
    return True


class _Bearer(httpx.Auth):
    """Sets ``Authorization`` from the token source on every request (rotation-safe)."""

    def __init__(self, tokens: TokenSource) -> None:
        self._tokens = tokens

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["authorization"] = f"Bearer {self._tokens.current()}"
        yield request


class Transport:
    """Sends requests to one rack with one identity; safe to share across tasks of one loop."""

    def __init__(
        self,
        cfg: OxideConfig,
        *,
        on_request: RequestObserver | None = None,
        http_transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
        on_token: Callable[[str], None] | None = None,
    ) -> None:
        self._cfg = cfg
        self._on_request = on_request
        self._rng = rng or random.Random()  # noqa: S311 -- jitter, not cryptography
        path = Path(cfg.token_file) if cfg.token_file else None
        self._tokens = TokenSource(cfg.token, path, on_change=on_token)
        self._http = httpx.AsyncClient(
            base_url=cfg.base_url,
            auth=_Bearer(self._tokens),
            headers={
                "api-version": cfg.api_version,
                "user-agent": cfg.user_agent,
                "accept": "application/json",
            },
            timeout=httpx.Timeout(
                connect=cfg.connect_timeout,
                read=cfg.request_timeout,
                write=cfg.request_timeout,
                pool=cfg.connect_timeout,
            ),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
            verify=_ssl_context(cfg),
            transport=http_transport,
            follow_redirects=False,
            # HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and NO_PROXY, as every HTTP client honours
            # them (and SSL_CERT_FILE/SSL_CERT_DIR when no CA file is configured).
            trust_env=True,
        )

    @property
    def config(self) -> OxideConfig:
        return self._cfg

    async def aclose(self) -> None:
        await self._http.aclose()

    def __repr__(self) -> str:
        return f"Transport(host={self._cfg.host!r})"

    async def request(
        self,
        method: str,
        template: str,
        path: str,
        *,
        query: Mapping[str, str | int] | None = None,
        body: Any = None,
        deadline: float | None = None,
        safety: Safety = Safety.SAFE,
        resolve: Resolver | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """Send ``method path`` and return the parsed JSON body (None for an empty body).

        ``headers`` override the client's defaults for this request only (the generation
        probe's ``api-version``).

        ``template`` is the OpenAPI path template (``/v1/disks/{disk}``), used for logs, error
        messages and the observer so that metrics have bounded cardinality.

        Resolution of ambiguous outcomes, when ``resolve`` is given:

        * ``Safety.CREATE``/``Safety.TRANSITION``: after a failure that leaves open whether
          the server acted (500, 502, 504, dropped connection, read timeout) we do not repeat
          the POST; we call ``resolve``, which looks the resource up. If it is already as
          requested (created with our properties, in or on its way to the target state) the
          request succeeded and we return it; otherwise nothing happened and the POST is
          repeated. After 429/503 or a connection error the POST is repeated directly.
        * Any request: when an attempt after such a possibly-applied failure gets a client
          error (400 ``ObjectAlreadyExists`` on a repeated create, 404 on a repeated delete,
          a state complaint on a repeated attach), the error may be the echo of our own
          earlier success, so ``resolve`` decides: ``Resolved`` means success, None means the
          error stands.
        """
        context = f"{method} {template}"
        maybe_applied = False
        last: api_errors.OxideError | None = None
        attempt = 0
        while True:
            attempt += 1
            budget = self._attempt_budget(deadline, context, last)
            error, verdict, value = await self._attempt(
                method,
                template,
                path,
                _Sent(query, body, headers),
                budget,
                deadline,
                attempt,
                context,
                last,
            )
            if error is None:
                return value
            assert verdict is not None
            error.attempt = attempt
            last = error

            if maybe_applied and resolve is not None and error.status in RESOLVABLE_STATUSES:
                return await self._resolve_or_raise(resolve, error)
            if not verdict.transient:
                raise error
            if safety is not Safety.SAFE and verdict.maybe_applied:
                if error.status in CREATE_RETRY_DIRECTLY:
                    maybe_applied = True
                elif resolve is None:
                    raise error
                else:
                    found = await resolve(error)
                    if found is not None:
                        return found.value
                    # Not there: the create did not happen (or has not landed yet; if it lands
                    # before our retry, the retry's ObjectAlreadyExists resolves it).
                    maybe_applied = True
            maybe_applied = maybe_applied or verdict.maybe_applied
            if attempt >= self._cfg.max_attempts:
                raise error
            await self._sleep_before_retry(attempt, error, deadline, context)

    async def _resolve_or_raise(self, resolve: Resolver, error: api_errors.OxideError) -> Any:
        found = await resolve(error)
        if found is None:
            raise error
        _log.debug("%s resolved as already done after earlier ambiguous failure", error.message)
        return found.value

    def _attempt_budget(
        self, deadline: float | None, context: str, last: api_errors.OxideError | None
    ) -> float:
        if deadline is None:
            return self._cfg.request_timeout
        left = deadline - time.monotonic()
        if left < _MIN_ATTEMPT_SECONDS:
            raise _timeout(context, last)
        return min(self._cfg.request_timeout, left)

    async def _attempt(
        self,
        method: str,
        template: str,
        path: str,
        sent: _Sent,
        budget: float,
        deadline: float | None,
        attempt: int,
        context: str,
        last: api_errors.OxideError | None,
    ) -> tuple[api_errors.OxideError | None, Verdict | None, Any]:
        """One try; returns (None, None, value) on success or (error, verdict, None)."""
        started = time.monotonic()
        status: int | None = None
        try:
            try:
                async with asyncio.timeout(budget):
                    response = await self._http.request(
                        method,
                        path,
                        params=dict(sent.query) if sent.query else None,
                        json=sent.body,
                        headers=dict(sent.headers) if sent.headers else None,
                    )
                    status = response.status_code
                    content = response.content
            except TimeoutError:
                if deadline is not None and time.monotonic() >= deadline - _MIN_ATTEMPT_SECONDS:
                    raise _timeout(context, last) from None
                silent = api_errors.OxideUnavailable(f"{context}: no response within {budget:.3g}s")
                return silent, Verdict(transient=True, maybe_applied=True), None
            except httpx.TransportError as exc:
                why = self._scrub(str(exc)) or "no detail"
                broken = api_errors.OxideUnavailable(f"{context}: {type(exc).__name__}: {why}")
                return broken, verdict_for_exception(exc), None
        finally:
            self._observe(method, template, status, time.monotonic() - started, attempt)

        request_id = response.headers.get("x-request-id")
        _log.debug(
            "oxide %s -> %s in %.3fs (attempt %d, request_id=%s)",
            context,
            status,
            time.monotonic() - started,
            attempt,
            request_id,
        )
        if 200 <= status < 300:
            return None, None, self._parse_success(content, context)
        scrubbed = content.replace(self._tokens.current().encode(), b"<redacted>")
        refused = api_errors.from_response(status, scrubbed, response.headers, context=context)
        return refused, verdict_for_status(status), None

    def _parse_success(self, content: bytes, context: str) -> Any:
        if not content.strip():
            return None
        try:
            return json.loads(content)
        except ValueError:
            raise api_errors.OxideUnexpectedResponse(
                f"{context}: response body is not JSON"
            ) from None

    async def _sleep_before_retry(
        self, attempt: int, error: api_errors.OxideError, deadline: float | None, context: str
    ) -> None:
        delay = backoff_delay(attempt, self._cfg.backoff_base, self._cfg.backoff_max, self._rng)
        hinted = error.retry_after if error.status == 429 else None
        if deadline is not None:
            left = deadline - time.monotonic()
            if hinted is not None and hinted >= left:
                raise _timeout(context, error)
            # Never sleep away the time the next attempt needs: at most half of what is left.
            delay = min(delay, left / 2)
        if hinted is not None:
            # Honour the server's hint, but never beyond our own patience: a huge Retry-After
            # from a confused proxy must not park a call with no deadline for hours.
            delay = max(delay, min(hinted, MAX_RETRY_AFTER))
        _log.debug(
            "oxide %s failed (%s), retry %d in %.3fs",
            context,
            type(error).__name__,
            attempt + 1,
            delay,
        )
        await asyncio.sleep(delay)

    def _observe(
        self, method: str, template: str, status: int | None, seconds: float, attempt: int
    ) -> None:
        if self._on_request is None:
            return
        try:
            self._on_request(method, template, status, seconds, attempt)
        except Exception:  # a metrics bug must never fail an API call
            _log.exception("request observer failed")

    def _scrub(self, text: str) -> str:
        return text.replace(self._tokens.current(), "<redacted>")


def _timeout(context: str, last: api_errors.OxideError | None) -> api_errors.OxideTimeout:
    why = f"; last error: {last}" if last is not None else ""
    return api_errors.OxideTimeout(f"{context}: deadline exceeded{why}", last_error=last)
