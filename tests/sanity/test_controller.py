"""Conformance: Controller service -- volumes, listing, publishing (tests/sanity/checks/)."""

from __future__ import annotations

import pytest

from tests.sanity.checks import Check, check_id, listing, publish, volumes
from tests.sanity.driver import Driver
from tests.sanity.resources import Resources


@pytest.mark.parametrize("check", volumes.CHECKS, ids=check_id)
def test_volumes(check: Check, driver: Driver, resources: Resources) -> None:
    check(driver, resources)


@pytest.mark.parametrize("check", listing.CHECKS, ids=check_id)
def test_listing(check: Check, driver: Driver, resources: Resources) -> None:
    check(driver, resources)


@pytest.mark.parametrize("check", publish.CHECKS, ids=check_id)
def test_publish(check: Check, driver: Driver, resources: Resources) -> None:
    check(driver, resources)
