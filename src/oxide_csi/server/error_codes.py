"""The one table that turns the plugin's exceptions into gRPC status codes.

Domain errors (:mod:`oxide_csi.errors`) name CSI situations and map one to one. The Oxide
client's errors never reach this table as such: the controller translates them into domain
errors (:mod:`oxide_csi.controller.oxide_failures`), so the server, which node plugins load too,
imports nothing of the Oxide client. Lookup walks the exception's class hierarchy, so a subclass
inherits its parent's code unless listed itself.
"""

from __future__ import annotations

import grpc

from oxide_csi import errors

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
    errors.Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    errors.PermissionDenied: grpc.StatusCode.PERMISSION_DENIED,
    errors.Internal: grpc.StatusCode.INTERNAL,
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
