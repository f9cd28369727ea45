"""The refusal memory on its own: what counts as a change, expiry, and the unsealed window."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from oxide_csi import errors
from oxide_csi.controller.attach.refusals import RefusalCache, fingerprint
from oxide_csi.oxide import Disk

DISK = Disk(
    id="d1",
    name="data",
    description="",
    project_id="p",
    size=1 << 30,
    block_size=4096,
    state="detached",
    instance_id=None,
    device_path="",
    disk_type="distributed",
    read_only=False,
    snapshot_id=None,
    image_id=None,
    time_created=None,
    time_modified=datetime(2026, 1, 1, tzinfo=UTC),
)


def _sealed(cache: RefusalCache, on_instance: set[str]) -> None:
    """What ``seal`` does after reading Oxide, without the reads."""
    for key, ref in cache._entries.items():
        if ref.seen is None:
            ref.seen = fingerprint(DISK, on_instance)
            assert key[0] == DISK.id


def test_refusal_is_repeated_until_disk_or_instance_changes() -> None:
    now = [0.0]
    cache = RefusalCache(clock=lambda: now[0])
    cache.note("d1", "i1", errors.ResourceExhausted("cannot attach more than 2 disks"))
    # Not sealed yet (the cycle still runs): answered from memory already.
    with pytest.raises(errors.ResourceExhausted, match="cannot attach more than 2"):
        cache.check(DISK, "i1", {"boot", "a"})
    _sealed(cache, {"boot", "a"})
    with pytest.raises(errors.ResourceExhausted):
        cache.check(DISK, "i1", {"boot", "a"})
    cache.check(DISK, "i2", {"boot", "a"})  # another instance: no memory
    cache.check(DISK, "i1", {"boot"})  # a slot freed: forgotten, tried again
    assert len(cache) == 0


def test_a_changed_disk_or_the_ttl_ends_the_memory() -> None:
    now = [0.0]
    cache = RefusalCache(ttl=600, clock=lambda: now[0])
    cache.note("d1", "i1", errors.FailedPrecondition("refused"))
    _sealed(cache, {"boot"})
    moved = replace(DISK, time_modified=datetime(2026, 1, 2, tzinfo=UTC))
    cache.check(moved, "i1", {"boot"})
    assert len(cache) == 0

    cache.note("d1", "i1", errors.FailedPrecondition("refused"))
    _sealed(cache, {"boot"})
    now[0] = 599.0
    with pytest.raises(errors.FailedPrecondition):
        cache.check(DISK, "i1", {"boot"})
    now[0] = 600.0
    cache.check(DISK, "i1", {"boot"})
    assert len(cache) == 0


def test_old_refusals_are_pruned_when_new_ones_arrive() -> None:
    now = [0.0]
    cache = RefusalCache(ttl=10, clock=lambda: now[0])
    cache.note("d1", "i1", errors.FailedPrecondition("x"))
    now[0] = 11.0
    cache.note("d2", "i1", errors.FailedPrecondition("y"))
    assert len(cache) == 1
