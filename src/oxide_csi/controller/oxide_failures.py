"""The one translation of the Oxide client's errors into the plugin's domain errors.

Why here, in the controller: only the controller talks to Oxide, and the server (which every
process loads, node plugins included) must not import the Oxide client to map its errors. So the
volume path hands any Oxide error that reaches the server to :func:`from_oxide` (wired by
``oxide_csi.app``), the attach coordinator calls it with its own context, and the interceptor's
table turns the domain error into a status code.

The mapping follows what a CO should do next: retry soon (Unavailable), fix its configuration
(Unauthenticated, PermissionDenied), or give up on this request. Where a context must read an
Oxide error differently, the difference is a named override below, not a second mapping.
"""

from __future__ import annotations

import enum

from oxide_csi import errors
from oxide_csi.oxide import api_errors


class During(enum.Enum):
    """The kind of work that met the Oxide error."""

    #: Disks and snapshots: create, delete, list, look up.
    VOLUMES = "volumes"
    #: An attach or detach, with the instance's stop and start around it.
    ATTACH = "attach"


#: The mapping. Lookup walks the error's class hierarchy, so a subclass not listed here
#: (OxideUnsupportedApiVersion, OxideUnexpectedResponse) takes its parent's row.
DOMAIN_ERRORS: dict[type[api_errors.OxideError], type[errors.CSIError]] = {
    api_errors.OxideNotFound: errors.NotFound,
    api_errors.OxideAlreadyExists: errors.AlreadyExists,
    api_errors.OxideConflict: errors.Aborted,
    # The backend refused the request given its current state (e.g. instance running).
    api_errors.OxideInvalidRequest: errors.FailedPrecondition,
    api_errors.OxideUnauthorized: errors.Unauthenticated,
    api_errors.OxideForbidden: errors.PermissionDenied,
    api_errors.OxideRateLimited: errors.Unavailable,
    api_errors.OxideInsufficientCapacity: errors.ResourceExhausted,
    api_errors.OxideServerError: errors.Unavailable,
    api_errors.OxideUnavailable: errors.Unavailable,
    api_errors.OxideTimeout: errors.DeadlineExceeded,
    # A waiter saw a disk fault or an instance fail: nothing a retry soon would fix.
    api_errors.OxideUnexpectedState: errors.FailedPrecondition,
    api_errors.OxideError: errors.Unavailable,
}

#: Where an attach or detach reads an Oxide error differently from the volume path.
ATTACH_OVERRIDES: dict[type[api_errors.OxideError], type[errors.CSIError]] = {
    # 507 here comes from the instance's start: the rack has no room to run it *now*. For
    # ControllerPublishVolume the spec reserves RESOURCE_EXHAUSTED for "the node has no room
    # for another volume", which would make the CO give up; a retry later can succeed.
    api_errors.OxideInsufficientCapacity: errors.Unavailable,
    # Attach creates nothing by name; a name clash here is the backend's passing state.
    api_errors.OxideAlreadyExists: errors.Unavailable,
}

#: Fragment of Nexus's 400 when an instance has no free disk slot: for ControllerPublishVolume
#: that is exactly the spec's RESOURCE_EXHAUSTED ("max volumes attached to the node").
_NO_SLOT = "cannot attach more than"


def domain_class(
    exc: api_errors.OxideError, during: During = During.VOLUMES
) -> type[errors.CSIError]:
    """The domain error class for ``exc`` met during ``during``."""
    if during is During.ATTACH:
        if isinstance(exc, api_errors.OxideInvalidRequest) and _NO_SLOT in exc.message:
            return errors.ResourceExhausted
        for klass in type(exc).__mro__:
            if klass in ATTACH_OVERRIDES:
                return ATTACH_OVERRIDES[klass]
    for klass in type(exc).__mro__:
        if klass in DOMAIN_ERRORS:
            return DOMAIN_ERRORS[klass]
    raise AssertionError("OxideError itself has a row")  # pragma: no cover


def from_oxide(
    exc: api_errors.OxideError, what: str = "", during: During = During.VOLUMES
) -> errors.CSIError:
    """The domain error for ``exc``; ``what`` (e.g. 'attach disk "d" to "i"') prefixes it."""
    message = f"{what}: {exc}" if what else str(exc)
    return domain_class(exc, during)(message)


def translate_escaped(exc: Exception) -> Exception:
    """For the server: an Oxide error that left the volume path becomes its domain error;
    anything else passes unchanged."""
    if isinstance(exc, api_errors.OxideError):
        return from_oxide(exc)
    return exc
