"""Conformance: Node service (checks in tests/sanity/checks/node.py and limits.py)."""

from __future__ import annotations

import pytest

from tests.sanity.checks import Check, check_id, limits, node
from tests.sanity.driver import Driver
from tests.sanity.resources import Resources


@pytest.mark.parametrize("check", node.CHECKS, ids=check_id)
def test_node(check: Check, driver: Driver, resources: Resources) -> None:
    check(driver, resources)


@pytest.mark.parametrize("check", limits.CHECKS, ids=check_id)
def test_limits(check: Check, driver: Driver, resources: Resources) -> None:
    check(driver, resources)
