"""Conformance: whole volume lifecycles through the node (tests/sanity/checks/lifecycle.py)."""

from __future__ import annotations

import pytest

from tests.sanity.checks import Check, access_modes, check_id, lifecycle
from tests.sanity.driver import Driver
from tests.sanity.resources import Resources


@pytest.mark.parametrize("check", lifecycle.CHECKS, ids=check_id)
def test_lifecycle(check: Check, driver: Driver, resources: Resources) -> None:
    check(driver, resources)


@pytest.mark.parametrize("check", access_modes.CHECKS, ids=check_id)
def test_access_modes(check: Check, driver: Driver, resources: Resources) -> None:
    check(driver, resources)
