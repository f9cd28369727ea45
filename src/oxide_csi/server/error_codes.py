"""The one table that turns the plugin's exceptions into gRPC status codes.

Domain errors (:mod:`oxide_csi.errors`) name CSI situations and map one to one. Oxide client
errors (:mod:`oxide_csi.oxide.errors`) reach here when a domain module lets them through
unchanged; their codes follow what a CO should do next: retry soon (UNAVAILABLE), fix
configuration (UNAUTHENTICATED, PERMISSION_DENIED), or give up on this request. Lookup walks the
exception's class hierarchy, so a subclass inherits its parent's code unless listed itself.
"""

from __future__ import annotations

import grpc

from oxide_csi import errors
from oxide_csi.oxide import errors as oxide_errors

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
    oxide_errors.NotFound: grpc.StatusCode.NOT_FOUND,
    oxide_errors.AlreadyExists: grpc.StatusCode.ALREADY_EXISTS,
    oxide_errors.Conflict: grpc.StatusCode.ABORTED,
    # The backend refused the request given its current state (e.g. instance running).
    oxide_errors.InvalidRequest: grpc.StatusCode.FAILED_PRECONDITION,
    oxide_errors.Unauthorized: grpc.StatusCode.UNAUTHENTICATED,
    oxide_errors.Forbidden: grpc.StatusCode.PERMISSION_DENIED,
    oxide_errors.RateLimited: grpc.StatusCode.UNAVAILABLE,
    oxide_errors.InsufficientCapacity: grpc.StatusCode.RESOURCE_EXHAUSTED,
    oxide_errors.ServerError: grpc.StatusCode.UNAVAILABLE,
    oxide_errors.Unavailable: grpc.StatusCode.UNAVAILABLE,
    oxide_errors.Timeout: grpc.StatusCode.DEADLINE_EXCEEDED,
    # A waiter saw a disk fault or an instance fail: nothing a retry soon would fix.
    oxide_errors.UnexpectedState: grpc.StatusCode.FAILED_PRECONDITION,
    oxide_errors.OxideError: grpc.StatusCode.UNAVAILABLE,
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
