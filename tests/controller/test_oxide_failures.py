"""The one translation of Oxide errors, checked against expectations written out here.

Why literal tables: the codes follow the CSI spec (ControllerPublishVolume's RESOURCE_EXHAUSTED
means "the node has no room for another volume"; CreateVolume's means "no capacity"), so the
expectations are stated independently of the mapping under test, and a changed row fails.
"""

from __future__ import annotations

import pytest

from oxide_csi import errors
from oxide_csi.controller.attach.ops import translate
from oxide_csi.controller.oxide_failures import DOMAIN_ERRORS, During, from_oxide
from oxide_csi.oxide import api_errors as ox

#: (Oxide error, on the volume path, during an attach or detach).
EXPECTED: list[tuple[type[ox.OxideError], type[errors.CSIError], type[errors.CSIError]]] = [
    (ox.OxideNotFound, errors.NotFound, errors.NotFound),
    (ox.OxideAlreadyExists, errors.AlreadyExists, errors.Unavailable),
    (ox.OxideConflict, errors.Aborted, errors.Aborted),
    (ox.OxideInvalidRequest, errors.FailedPrecondition, errors.FailedPrecondition),
    (ox.OxideUnsupportedApiVersion, errors.FailedPrecondition, errors.FailedPrecondition),
    (ox.OxideUnauthorized, errors.Unauthenticated, errors.Unauthenticated),
    (ox.OxideForbidden, errors.PermissionDenied, errors.PermissionDenied),
    (ox.OxideRateLimited, errors.Unavailable, errors.Unavailable),
    (ox.OxideInsufficientCapacity, errors.ResourceExhausted, errors.Unavailable),
    (ox.OxideServerError, errors.Unavailable, errors.Unavailable),
    (ox.OxideUnavailable, errors.Unavailable, errors.Unavailable),
    (ox.OxideTimeout, errors.DeadlineExceeded, errors.DeadlineExceeded),
    (ox.OxideUnexpectedState, errors.FailedPrecondition, errors.FailedPrecondition),
    (ox.OxideUnexpectedResponse, errors.Unavailable, errors.Unavailable),
    (ox.OxideError, errors.Unavailable, errors.Unavailable),
]


def _oxide(klass: type[ox.OxideError], message: str = "oxide said no") -> ox.OxideError:
    if klass is ox.OxideUnexpectedState:
        return ox.OxideUnexpectedState(message, kind="disk", resource="d", state="faulted")
    if klass is ox.OxideTimeout:
        return ox.OxideTimeout(message)
    return klass(message, status=400, error_code="X", request_id="r-1")


def test_every_oxide_error_class_has_an_expectation() -> None:
    expected = {row[0] for row in EXPECTED}
    assert set(DOMAIN_ERRORS) <= expected
    assert {
        k for k in vars(ox).values() if isinstance(k, type) and issubclass(k, ox.OxideError)
    } == expected


@pytest.mark.parametrize(("oxide", "volumes", "attach"), EXPECTED, ids=lambda v: v.__name__)
def test_each_context_gets_its_expected_domain_error(
    oxide: type[ox.OxideError], volumes: type[errors.CSIError], attach: type[errors.CSIError]
) -> None:
    on_volumes = from_oxide(_oxide(oxide))
    assert type(on_volumes) is volumes and "oxide said no" in on_volumes.message
    during_attach = translate(_oxide(oxide), 'attach disk "d" to "i"')
    assert type(during_attach) is attach
    assert str(during_attach).startswith('attach disk "d" to "i": oxide said no')
    assert type(from_oxide(_oxide(oxide), "x", During.ATTACH)) is attach


def test_an_instance_with_no_free_slot_is_resource_exhausted_on_publish() -> None:
    """Nexus's 400 for a full instance is the spec's RESOURCE_EXHAUSTED for publish."""
    full = _oxide(ox.OxideInvalidRequest, "cannot attach more than 8 disks to instance")
    assert type(translate(full, "attach")) is errors.ResourceExhausted
    assert type(from_oxide(full)) is errors.FailedPrecondition


def test_attach_failures_that_are_not_oxide_errors() -> None:
    assert type(translate(OSError("disk full"), "attach")) is errors.Unavailable
    assert type(translate(RuntimeError("bug"), "attach")) is errors.Internal
    passed = errors.Aborted("busy")
    assert translate(passed, "attach") is passed
