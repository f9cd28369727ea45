"""The suite against a correct fake driver: every check it can run passes.

Why: a conformance check that fails a driver following the specification would be worse than
none. The lifecycle checks that look at real mounts and devices are left out (the fake cannot
mount); they are proven against the real driver, and shown to fail without mounts in
test_meta_node.py.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.sanity.checks import (
    Check,
    access_modes,
    check_id,
    identity,
    lifecycle,
    limits,
    listing,
    node,
    publish,
    snapshots,
    volumes,
)
from tests.sanity.fakes.harness import FakeDriver

BASELINE = (
    *identity.CHECKS,
    *volumes.CHECKS,
    *listing.CHECKS,
    *publish.CHECKS,
    *snapshots.CHECKS,
    *node.CHECKS,
    *limits.CHECKS,
    lifecycle.node_idempotency,
    lifecycle.stats_not_at_path,
    access_modes.single_writer_one_target,
)


@pytest.mark.parametrize("check", BASELINE, ids=check_id)
def test_correct_fake_passes(check: Check, fake_driver: Callable[..., FakeDriver]) -> None:
    fake_driver().run(check)
