"""The fence hook of the attach worker: no Oxide change (stop, attach, detach, start, hot
attach) goes out without the fence's word, and a shared fence rechecks stale work before a
stop. The Lease behind the fence is tested in ``tests/kube``; here a fence the test steers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from oxide_csi import errors
from oxide_csi.controller.attach import HotAttach
from oxide_csi.controller.attach.fence import FenceLost, Hold
from oxide_csi.oxide import OxideClient
from oxide_sim import SimulatorServer
from tests.controller.attach.conftest import CoordinatorFactory, Rack, marked_rack, soon

INSTANCE = "instance-0"
CHANGES = (
    "POST /v1/instances/{instance}/stop",
    "POST /v1/instances/{instance}/start",
    "POST /v1/instances/{instance}/disks/attach",
    "POST /v1/instances/{instance}/disks/detach",
)


@pytest.fixture
def sim(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SimulatorServer]:
    with marked_rack(request, tmp_path) as server:
        yield server


class Lost:
    def change_deadline(self, deadline: float) -> float:
        raise FenceLost("the test took the fence away")


class StolenFence:
    """Held, but lost before the first change: as a holder cut off from the API server."""

    shared = True

    def __init__(self) -> None:
        self.holds = 0

    @contextlib.asynccontextmanager
    async def hold(self, instance_id: str, *, deadline: float) -> AsyncIterator[Hold]:
        self.holds += 1
        yield Lost()


async def changes(rack: Rack) -> int:
    counts = await asyncio.gather(*(rack.requests(key) for key in CHANGES))
    return sum(counts)


@pytest.mark.parametrize("hot", [False, True], ids=["cycle", "hot"])
@pytest.mark.hotplug
async def test_no_change_without_the_fence(
    rack: Rack, client: OxideClient, make_coordinator: CoordinatorFactory, hot: bool
) -> None:
    fence = StolenFence()
    coord = await make_coordinator(fence=fence, hot=HotAttach(client) if hot else None)
    (disk,) = await rack.disks("fenced", 1)

    with pytest.raises(errors.Unavailable, match="took the fence away"):
        await coord.attach(disk.id, INSTANCE, deadline=soon())

    assert fence.holds == 1
    assert await changes(rack) == 0
    assert await rack.cycles(INSTANCE) == (0, 0)
    assert await rack.disk_on(disk.id) is None


async def test_a_shared_fence_rechecks_before_stopping(
    rack: Rack, client: OxideClient, make_coordinator: CoordinatorFactory
) -> None:
    """Work another controller has done meanwhile is answered without a stop."""

    class Shared:
        shared = True

        @contextlib.asynccontextmanager
        async def hold(self, instance_id: str, *, deadline: float) -> AsyncIterator[Hold]:
            # Another controller finishes this very attach while we wait for the fence.
            await client.stop_instance(instance_id, deadline=soon())
            await client.wait_instance(instance_id, {"stopped"}, deadline=soon())
            await client.attach_disk(instance_id, disk.id, deadline=soon())
            await client.start_instance(instance_id, deadline=soon())
            await client.wait_instance(instance_id, {"running"}, deadline=soon())
            yield _Always()

    class _Always:
        def change_deadline(self, deadline: float) -> float:
            return deadline

    coord = await make_coordinator(fence=Shared())
    (disk,) = await rack.disks("raced", 1)

    await coord.attach(disk.id, INSTANCE, deadline=soon())

    assert await rack.cycles(INSTANCE) == (1, 1)  # the other controller's cycle only
    assert await rack.disk_on(disk.id) == await rack.instance_id(INSTANCE)
