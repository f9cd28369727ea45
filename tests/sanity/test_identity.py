"""Conformance: Identity service (checks in tests/sanity/checks/identity.py)."""

from __future__ import annotations

import pytest

from tests.sanity.checks import Check, check_id, identity
from tests.sanity.driver import Driver
from tests.sanity.resources import Resources


@pytest.mark.parametrize("check", identity.CHECKS, ids=check_id)
def test_identity(check: Check, driver: Driver, resources: Resources) -> None:
    check(driver, resources)
