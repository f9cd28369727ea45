"""The one table that turns the plugin's exceptions into gRPC status codes.

Domain errors (:mod:`oxide_csi.errors`) name CSI situations and map one to one. Oxide client
errors (:mod:`oxide_csi.oxide.api_errors`) reach here when a domain module lets them through
unchanged; their codes follow what a CO should do next: retry soon (UNAVAILABLE), fix
configuration (UNAUTHENTICATED, PERMISSION_DENIED), or give up on this request. Lookup walks the
exception's class hierarchy, so a subclass inherits its parent's code unless listed itself.
"""

from __future__ import annotations

import grpc

from oxide_csi import errors
from oxide_csi.oxide import api_errors

CODE_TABLE: dict[type[BaseException], grpc.StatusCode] = {
    errors.InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    errors.NotFound: grpc.StatusCode.NOT_FOUND,
    errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    errors.FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    errors.ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    errors.Aborted: grpc.StatusCode.ABORTED,
    errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
    errors.OutOfRange: grpc.StatusCode.OUT_OF_RANGE,
    errors.DeadlineExceeded: grpc.StatusCode.DEADLINE_EXCEEDED,
    errors.Internal: grpc.StatusCode.INTERNAL,
    api_errors.OxideNotFound: grpc.StatusCode.NOT_FOUND,
    api_errors.OxideAlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    api_errors.OxideConflict: grpc.StatusCode.ABORTED,
    # The backend refused the request given its current state (e.g. instance running).
    api_errors.OxideInvalidRequest: grpc.StatusCode.FAILED_PRECONDITION,
    api_errors.OxideUnauthorized: grpc.StatusCode.UNAUTHENTICATED,
    api_errors.OxideForbidden: grpc.StatusCode.PERMISSION_DENIED,
    api_errors.OxideRateLimited: grpc.StatusCode.UNAVAILABLE,
    api_errors.OxideInsufficientCapacity: grpc.StatusCode.RESOURCE_EXHAUSTED,
    api_errors.OxideServerError: grpc.StatusCode.UNAVAILABLE,
    api_errors.OxideUnavailable: grpc.StatusCode.UNAVAILABLE,
    api_errors.OxideTimeout: grpc.StatusCode.DEADLINE_EXCEEDED,
    # A waiter saw a disk fault or an instance fail: nothing a retry soon would fix.
    api_errors.OxideUnexpectedState: grpc.StatusCode.FAILED_PRECONDITION,
    api_errors.OxideError: grpc.StatusCode.UNAVAILABLE,
    # The generated base servicer raises this for every RPC we do not offer (expansion, ...).
    NotImplementedError: grpc.StatusCode.UNIMPLEMENTED,
}


def code_for(exc: BaseException) -> grpc.StatusCode | None:
    """The status code for ``exc``, or ``None`` when it is unexpected (a bug: INTERNAL + id)."""
    for klass in type(exc).__mro__:
        code = CODE_TABLE.get(klass)
        if code is not None:
            return code
    return None
