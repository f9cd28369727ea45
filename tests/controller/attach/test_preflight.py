"""Nothing Oxide will refuse costs a power cycle, and the controller's own instance none at all.

The simulator holds a second project (``team-a``, instance ``team-a-0``) and, where a test
needs Oxide to refuse what our checks cannot know, enforces fewer disk slots than the
coordinator believes in.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from oxide_csi import errors
from oxide_csi.controller.attach import AttachCoordinator
from oxide_csi.controller.attach.refusals import RefusalCache
from tests.controller.attach.conftest import (
    GIB,
    TOKEN,
    CoordinatorFactory,
    Rack,
    rack_of,
    soon,
)
from tests.controller.attach.memory_store import MemoryAttachRecordStore

INSTANCE = "instance-0"


async def test_own_instance_is_never_cycled(
    rack: Rack, make_coordinator: CoordinatorFactory
) -> None:
    own = await rack.instance_id(INSTANCE)
    plain = await make_coordinator()
    attached, loose = await rack.disks("own", 2)
    await plain.attach(attached.id, INSTANCE, deadline=soon())  # before the guard existed
    assert await rack.cycles(INSTANCE) == (1, 1)

    guarded = await make_coordinator(own_instance_id=own.upper())

    with pytest.raises(errors.FailedPrecondition, match="runs this controller"):
        await guarded.attach(loose.id, INSTANCE, deadline=soon())
    with pytest.raises(errors.FailedPrecondition, match="runs this controller"):
        await guarded.detach(attached.id, own, deadline=soon())
    # What needs no cycle still answers: already attached, not attached.
    assert (await guarded.attach(attached.id, own, deadline=soon())).already_attached
    await guarded.detach(loose.id, INSTANCE, deadline=soon())
    assert await rack.cycles(INSTANCE) == (1, 1)
    assert await rack.disk_on(attached.id) == own
    # Other instances are not affected by the guard.
    await guarded.attach(loose.id, "instance-1", deadline=soon())
    assert await rack.cycles("instance-1") == (1, 1)


class TwoProjects:
    """A rack with projects ``default`` and ``team-a`` that allows 2 disks per instance (the
    coordinator is told 8), a coordinator in ``default`` and a clock for its refusal memory."""

    def __init__(self, rack: Rack) -> None:
        self.now = 0.0
        self.rack = rack
        self.coord = AttachCoordinator(
            rack.client,
            record=MemoryAttachRecordStore(),
            batch_window=0.05,
            op_timeout=30,
            refusals=RefusalCache(clock=lambda: self.now),
        )

    async def foreign(self, path: str, **kwargs: Any) -> Any:
        """A raw request to the simulator as another team would make it."""
        async with httpx.AsyncClient(
            base_url=self.rack.sim.url, headers={"Authorization": f"Bearer {TOKEN}"}
        ) as http:
            response = await http.request(kwargs.pop("method", "GET"), path, **kwargs)
            response.raise_for_status()
            return response.json()


@pytest.fixture
async def two(tmp_path: Path) -> AsyncIterator[TwoProjects]:
    async with rack_of(
        instances=1, extra_projects=["team-a"], max_disks_per_instance=2, state_dir=tmp_path
    ) as rack:
        made = TwoProjects(rack)
        await made.coord.start()
        try:
            yield made
        finally:
            await made.coord.close()


async def test_instance_of_another_project_is_refused_without_a_stop(two: TwoProjects) -> None:
    (disk,) = await two.rack.disks("mine", 1)
    other = await two.foreign("/v1/instances/team-a-0", params={"project": "team-a"})

    with pytest.raises(errors.FailedPrecondition, match="not in the controller's project"):
        await two.coord.attach(disk.id, other["id"], deadline=soon())
    assert await two.rack.cycles("team-a-0") == (0, 0)


async def test_disk_of_another_project_is_refused_without_a_stop(two: TwoProjects) -> None:
    body = {
        "name": "theirs",
        "description": "",
        "size": GIB,
        "disk_backend": {
            "type": "distributed",
            "disk_source": {"type": "blank", "block_size": 4096},
        },
    }
    theirs = await two.foreign("/v1/disks", method="POST", params={"project": "team-a"}, json=body)

    with pytest.raises(errors.FailedPrecondition, match="not in the controller's project"):
        await two.coord.attach(theirs["id"], INSTANCE, deadline=soon())
    assert await two.rack.cycles(INSTANCE) == (0, 0)


async def test_a_refusal_after_the_stop_is_answered_from_memory_until_something_changes(
    two: TwoProjects,
) -> None:
    first, second = await two.rack.disks("full", 2)
    await two.coord.attach(first.id, INSTANCE, deadline=soon())
    assert await two.rack.cycles(INSTANCE) == (1, 1)

    # Oxide allows 2 (boot + first); the coordinator thinks 8, so this costs one cycle...
    with pytest.raises(errors.ResourceExhausted, match="cannot attach more than 2"):
        await two.coord.attach(second.id, INSTANCE, deadline=soon())
    assert await two.rack.cycles(INSTANCE) == (2, 2)
    # ...and the CO's retries none, with Oxide's reason.
    for _ in range(3):
        with pytest.raises(errors.ResourceExhausted, match=r"cannot attach more than 2.*refused"):
            await two.coord.attach(second.id, INSTANCE, deadline=soon())
    assert await two.rack.cycles(INSTANCE) == (2, 2)

    # Ten minutes later one more cycle may try (and is refused again, and remembered again).
    two.now += 601
    with pytest.raises(errors.ResourceExhausted):
        await two.coord.attach(second.id, INSTANCE, deadline=soon())
    assert await two.rack.cycles(INSTANCE) == (3, 3)
    with pytest.raises(errors.ResourceExhausted):
        await two.coord.attach(second.id, INSTANCE, deadline=soon())
    assert await two.rack.cycles(INSTANCE) == (3, 3)

    # The instance changed (a slot was freed): the retry is tried for real, and succeeds.
    await two.coord.detach(first.id, INSTANCE, deadline=soon())
    await two.coord.attach(second.id, INSTANCE, deadline=soon())
    assert await two.rack.disk_on(second.id) == await two.rack.instance_id(INSTANCE)
