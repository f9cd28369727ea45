"""Typed failures of the Oxide API, parsed from its ``Error`` body.

Every answer Nexus gives outside 2xx carries ``{"request_id", "message", "error_code"?}``; dropshot
itself leaves ``error_code`` out when it rejects a request before Nexus sees it (bad query string,
unknown route). Callers above the client branch on the *class* (``OxideNotFound`` means "gone",
``OxideAlreadyExists`` means "name taken"), so the mapping from status and code to class lives here,
in one table, and nowhere else. Every class carries the ``Oxide`` prefix so that it cannot be
mistaken for the plugin's domain errors (``oxide_csi.errors.NotFound`` and the like), which
the layers above raise.

Messages are built only from what the server sent plus the method and path template; the
transport scrubs the bearer token out of any server text before it gets here, so ``str()`` and
``repr()`` of these exceptions are always safe to log.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

#: How many characters of a non-JSON error body (a proxy's HTML page, say) we keep.
_RAW_BODY_LIMIT = 200

#: Substring of dropshot's answer to an ``api-version`` header newer than the server serves.
_VERSION_TOO_NEW = "does not support this api version"


class OxideError(Exception):
    """Base of every failure the client raises.

    ``status`` is the HTTP status (None when no response arrived), ``error_code`` the Oxide
    code (None when the server sent none), ``request_id`` the id Nexus logs under, so an
    operator can find the request in the rack's logs. ``attempt`` is set by the transport to
    the attempt number that produced this error.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error_code = error_code
        self.request_id = request_id
        self.retry_after = retry_after
        self.attempt = 1

    def __str__(self) -> str:
        details = []
        if self.status is not None:
            details.append(f"HTTP {self.status}")
        if self.error_code:
            details.append(self.error_code)
        if self.request_id:
            details.append(f"request_id={self.request_id}")
        return f"{self.message} ({', '.join(details)})" if details else self.message

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(message={self.message!r}, status={self.status!r}, "
            f"error_code={self.error_code!r}, request_id={self.request_id!r})"
        )


class OxideNotFound(OxideError):
    """404: the named resource (or the project, or the route) does not exist."""


class OxideAlreadyExists(OxideError):
    """400 ``ObjectAlreadyExists``: a resource with that name already exists in the project."""


class OxideInvalidRequest(OxideError):
    """Any other 400: the server refused the request as malformed or not allowed now.

    Nexus answers several state conflicts this way too (attaching to a running instance,
    exceeding the disk-per-instance limit), so callers read ``message`` for the reason.
    """


class OxideUnsupportedApiVersion(OxideInvalidRequest):
    """400: the rack is older than the ``api-version`` this client sends; configure an older one."""


class OxideUnauthorized(OxideError):
    """401: the token is missing, wrong or expired."""


class OxideForbidden(OxideError):
    """403: the token's user may not do this in this project or silo."""


class OxideConflict(OxideError):
    """409: the resource is in a state that does not allow this now (e.g. still stopping)."""


class OxideRateLimited(OxideError):
    """429: too many requests; ``retry_after`` holds the server's hint in seconds, if any."""


class OxideInsufficientCapacity(OxideError):
    """507: the rack or silo has no room (storage quota, no sled able to run the instance)."""


class OxideServerError(OxideError):
    """500/502 and other unexpected 5xx: the server or a proxy failed; it may have acted."""


class OxideUnavailable(OxideError):
    """503, 504, or no usable response (connection refused or dropped, per-attempt timeout)."""


class OxideTimeout(OxideError):
    """The caller's deadline passed before the operation finished.

    ``last_error`` is the failure that was being retried when time ran out, if any.
    """

    def __init__(self, message: str, *, last_error: OxideError | None = None) -> None:
        super().__init__(message)
        self.last_error = last_error


class OxideUnexpectedResponse(OxideError):
    """A 2xx answer whose body is not what the API document says (missing field, not JSON)."""


class OxideUnexpectedState(OxideError):
    """A waiter saw the resource reach a state it cannot come back from (faulted, failed)."""

    def __init__(self, message: str, *, kind: str, resource: str, state: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.resource = resource
        self.state = state


def _class_for(status: int, error_code: str | None, message: str) -> type[OxideError]:
    if status == 400:
        if error_code == "ObjectAlreadyExists":
            return OxideAlreadyExists
        if _VERSION_TOO_NEW in message.lower():
            return OxideUnsupportedApiVersion
        return OxideInvalidRequest
    by_status: dict[int, type[OxideError]] = {
        401: OxideUnauthorized,
        403: OxideForbidden,
        404: OxideNotFound,
        409: OxideConflict,
        429: OxideRateLimited,
        503: OxideUnavailable,
        504: OxideUnavailable,
        507: OxideInsufficientCapacity,
    }
    if status in by_status:
        return by_status[status]
    if status >= 500:
        return OxideServerError
    return OxideInvalidRequest


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header; only the delta-seconds form is honoured.

    The HTTP-date form needs a trustworthy clock shared with the server, which a rack behind a
    proxy does not promise, so we ignore it and fall back to our own backoff.
    """
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    if seconds != seconds or seconds < 0:  # NaN or negative
        return None
    return seconds


def from_response(
    status: int,
    body: bytes,
    headers: Mapping[str, str],
    *,
    context: str,
) -> OxideError:
    """Build the typed error for a non-2xx response.

    ``context`` ("GET /v1/disks/{disk}") prefixes the message so a log line says which call
    failed without echoing concrete URLs, which could carry user-chosen names of any length.
    ``body`` must already be scrubbed of secrets by the caller.
    """
    error_code: str | None = None
    request_id: str | None = headers.get("x-request-id")
    server_message: str | None = None
    try:
        parsed: Any = json.loads(body) if body else None
    except (ValueError, UnicodeDecodeError):
        parsed = None
    if isinstance(parsed, dict):
        raw_code = parsed.get("error_code")
        error_code = raw_code if isinstance(raw_code, str) and raw_code else None
        raw_message = parsed.get("message")
        server_message = raw_message if isinstance(raw_message, str) else None
        raw_id = parsed.get("request_id")
        if isinstance(raw_id, str) and raw_id:
            request_id = raw_id
    if server_message is None:
        text = body.decode("utf-8", errors="replace").strip()
        server_message = text[:_RAW_BODY_LIMIT] if text else "no error body"
    cls = _class_for(status, error_code, server_message)
    return cls(
        f"{context}: {server_message}",
        status=status,
        error_code=error_code,
        request_id=request_id,
        retry_after=parse_retry_after(headers.get("retry-after")),
    )
