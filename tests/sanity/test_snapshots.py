"""Conformance: snapshots (checks in tests/sanity/checks/snapshots.py)."""

from __future__ import annotations

import pytest

from tests.sanity.checks import Check, check_id, snapshots
from tests.sanity.driver import Driver
from tests.sanity.resources import Resources


@pytest.mark.parametrize("check", snapshots.CHECKS, ids=check_id)
def test_snapshots(check: Check, driver: Driver, resources: Resources) -> None:
    check(driver, resources)
