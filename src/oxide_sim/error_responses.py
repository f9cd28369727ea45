"""Errors the simulated API returns, shaped like Nexus's.

Nexus turns its internal ``Error`` enum into an HTTP status, an ``error_code`` and an external
message (omicron ``common/src/api/external/error.rs``); dropshot itself answers request-parsing
failures with a 400 that has *no* ``error_code``. Each factory below reproduces one of those so
a client tested here sees the same triple it would see from a rack.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error response: HTTP status, optional ``error_code`` and the external message."""

    def __init__(
        self,
        status: int,
        error_code: str | None,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message
        self.headers = headers or {}

    def body(self, request_id: str) -> dict[str, Any]:
        out: dict[str, Any] = {"request_id": request_id}
        if self.error_code is not None:
            out["error_code"] = self.error_code
        out["message"] = self.message
        return out

    def __repr__(self) -> str:
        return f"ApiError({self.status}, {self.error_code!r}, {self.message!r})"


def not_found(resource: str, lookup: str, value: str) -> ApiError:
    """``ObjectNotFound``: e.g. ``not found: disk with name "foo"`` (lookup is name or id)."""
    return ApiError(404, "ObjectNotFound", f'not found: {resource} with {lookup} "{value}"')


def already_exists(resource: str, name: str) -> ApiError:
    return ApiError(400, "ObjectAlreadyExists", f'already exists: {resource} "{name}"')


def invalid_request(message: str) -> ApiError:
    return ApiError(400, "InvalidRequest", message)


def invalid_value(label: str, message: str) -> ApiError:
    return ApiError(400, "InvalidValue", f'unsupported value for "{label}": {message}')


def conflict(message: str) -> ApiError:
    return ApiError(409, "Conflict", message)


def service_unavailable(message: str) -> ApiError:
    return ApiError(503, "ServiceNotAvailable", message)


def insufficient_capacity(message: str) -> ApiError:
    return ApiError(507, "InsufficientCapacity", message)


def unauthenticated() -> ApiError:
    return ApiError(401, "Unauthorized", "credentials missing or invalid")


def bad_query(detail: str) -> ApiError:
    """dropshot's answer to a query string it cannot deserialize (no error_code)."""
    return ApiError(400, None, f"unable to parse query string: {detail}")


def bad_body(detail: str) -> ApiError:
    """dropshot's answer to a JSON body it cannot deserialize (no error_code)."""
    return ApiError(400, None, f"unable to parse JSON body: {detail}")


def bad_path(detail: str) -> ApiError:
    return ApiError(400, None, f"bad parameter in URL path: {detail}")


def route_not_found() -> ApiError:
    return ApiError(404, None, "Not Found")


def method_not_allowed() -> ApiError:
    return ApiError(405, None, "Method Not Allowed")


def internal() -> ApiError:
    return ApiError(500, "Internal", "Internal Server Error")


#: Bodies of injected faults, keyed by status: what Nexus (or the proxy in front) would send.
_FAULT_BODIES: dict[int, tuple[str, str]] = {
    429: ("TooManyRequests", "Too Many Requests"),
    500: ("Internal", "Internal Server Error"),
    502: ("BadGateway", "Bad Gateway"),
    503: ("ServiceNotAvailable", "Service Unavailable"),
    504: ("GatewayTimeout", "Gateway Timeout"),
    507: ("InsufficientCapacity", "Insufficient capacity"),
}


def injected(status: int) -> ApiError:
    code, message = _FAULT_BODIES.get(status, ("Internal", "Injected fault"))
    return ApiError(status, code, message)
