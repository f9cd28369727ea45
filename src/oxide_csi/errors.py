"""The plugin's domain errors: one small hierarchy that every layer above the Oxide client raises.

Why a hierarchy of our own instead of raising grpc status codes directly: the domain modules
(attach coordinator, device finder, mounter, volume naming) must stay free of gRPC so they can be
tested and reused without a server, and so that exactly one place -- the table in
``oxide_csi.server.error_codes`` -- decides which CSI status code each failure becomes. Each
class names the *situation*, in the words of the CSI specification, not the code.

The Oxide client has its own hierarchy (``oxide_csi.oxide.api_errors``) because it knows nothing of
CSI; ``oxide_csi.controller.oxide_failures`` is the one place that translates it into this one.
"""

from __future__ import annotations


class CSIError(Exception):
    """Base of every expected, classified failure. The message is safe to return to callers."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidArgument(CSIError):
    """A request field is missing, malformed or names something the plugin cannot do."""


class NotFound(CSIError):
    """The volume, snapshot or node named in the request does not exist."""


class AlreadyExists(CSIError):
    """A resource with this name exists but is incompatible with the request."""


class FailedPrecondition(CSIError):
    """The system is not in a state that allows the call (disk attached elsewhere, not staged)."""


class ResourceExhausted(CSIError):
    """A hard limit was reached: no free disk slot on the instance, no capacity."""


class Aborted(CSIError):
    """An operation for the same resource is already in flight, or a token is not ours."""


class Unavailable(CSIError):
    """A dependency is temporarily out of reach; the caller should retry."""


class OutOfRange(CSIError):
    """A requested capacity cannot be satisfied within the limits the backend supports."""


class DeadlineExceeded(CSIError):
    """The work did not finish in time; it may still finish, and a retry will join it."""


class Unauthenticated(CSIError):
    """The backend refused our credentials: an operator must fix the configuration."""


class PermissionDenied(CSIError):
    """The backend knows our credentials but denies them this operation."""


class Internal(CSIError):
    """An invariant of ours broke. Prefer a specific class; this one is for the unexplained."""
