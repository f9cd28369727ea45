"""The conformance checks, as plain functions ``check(driver, resources) -> None``.

Why plain functions instead of test functions: the same check runs against the real driver
(``tests/sanity/test_*.py``) and against deliberately broken fake drivers
(``tests/sanity/test_meta_*.py``), which prove that each check can fail.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from tests.sanity.driver import Driver
    from tests.sanity.resources import Resources

Check: TypeAlias = "Callable[[Driver, Resources], None]"


def check_id(check: Check) -> str:
    """The pytest id of a check: its function name."""
    return check.__name__
