"""``--hot-attach``: attach on the running instance first; a refusal (status and error code)
falls back to one power cycle; a device that never appeared is repaired through a cycle."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from oxide_csi.controller.attach import HotAttach
from oxide_csi.controller.attach.hot import is_refusal
from oxide_csi.oxide import OxideClient, api_errors
from oxide_sim import SimulatorServer
from tests.controller.attach.conftest import CoordinatorFactory, Rack, marked_rack, soon

INSTANCE = "instance-0"
ATTACH = "POST /v1/instances/{instance}/disks/attach"
DETACH = "POST /v1/instances/{instance}/disks/detach"


@pytest.fixture
def sim(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SimulatorServer]:
    """The attach tests' rack, a hot-plug one for tests marked ``hotplug``."""
    with marked_rack(request, tmp_path) as server:
        yield server


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_refused_hot_attach_falls_back_to_one_cycle(
    rack: Rack, client: OxideClient, make_coordinator: CoordinatorFactory
) -> None:
    coord = await make_coordinator(hot=HotAttach(client))
    disks = await rack.disks("cold", 2)

    results = await asyncio.gather(*(coord.attach(d.id, INSTANCE, deadline=soon()) for d in disks))

    assert not any(r.already_attached for r in results)
    assert await rack.cycles(INSTANCE) == (1, 1)  # both refused hot, then one cycle for both
    assert await rack.requests(ATTACH) == 4
    iid = await rack.instance_id(INSTANCE)
    assert [await rack.disk_on(d.id) for d in disks] == [iid, iid]


@pytest.mark.hotplug
async def test_accepted_hot_attach_and_detach_stop_nothing(
    rack: Rack, client: OxideClient, make_coordinator: CoordinatorFactory
) -> None:
    coord = await make_coordinator(hot=HotAttach(client))
    (disk,) = await rack.disks("hot", 1)

    result = await coord.attach(disk.id, INSTANCE, deadline=soon())

    assert not result.already_attached
    assert await rack.disk_on(disk.id) == await rack.instance_id(INSTANCE)
    await coord.detach(disk.id, INSTANCE, deadline=soon())
    assert await rack.disk_on(disk.id) is None
    assert await rack.cycles(INSTANCE) == (0, 0)
    entry = (await rack.stats())["instances"][INSTANCE]
    assert (entry["hot_attaches"], entry["hot_detaches"]) == (1, 1)


@pytest.mark.hotplug
async def test_without_hot_attach_the_plugin_still_cycles(
    rack: Rack, make_coordinator: CoordinatorFactory
) -> None:
    coord = await make_coordinator()
    (disk,) = await rack.disks("plain", 1)
    await coord.attach(disk.id, INSTANCE, deadline=soon())
    assert await rack.cycles(INSTANCE) == (1, 1)  # off by default: a hot-plug rack is not used


@pytest.mark.hotplug
async def test_a_device_that_never_appeared_is_replugged_through_a_cycle(
    rack: Rack, client: OxideClient, make_coordinator: CoordinatorFactory
) -> None:
    clock = Clock()
    coord = await make_coordinator(hot=HotAttach(client, timeout=60, clock=clock))
    (disk,) = await rack.disks("lost", 1)
    async with httpx.AsyncClient() as http:
        url = f"{rack.sim.url}/sim/instances/{INSTANCE}/hotplug-silent"
        (await http.post(url, json={"count": 1})).raise_for_status()

    await coord.attach(disk.id, INSTANCE, deadline=soon())  # accepted; the guest saw nothing
    assert await rack.cycles(INSTANCE) == (0, 0)
    clock.now += 59  # re-published within the timeout: the device may still be coming
    assert (await coord.attach(disk.id, INSTANCE, deadline=soon())).already_attached
    assert await rack.cycles(INSTANCE) == (0, 0)

    clock.now += 1  # the timeout passed: detached and attached again inside one cycle
    repaired = await coord.attach(disk.id, INSTANCE, deadline=soon())
    assert not repaired.already_attached
    assert await rack.cycles(INSTANCE) == (1, 1)
    assert await rack.requests(DETACH) == 1
    assert await rack.disk_on(disk.id) == await rack.instance_id(INSTANCE)

    clock.now += 600  # repaired once: the boot showed it, a later re-publish costs nothing
    assert (await coord.attach(disk.id, INSTANCE, deadline=soon())).already_attached
    assert await rack.cycles(INSTANCE) == (1, 1)


@pytest.mark.hotplug
async def test_a_reboot_since_the_hot_attach_shows_the_device(
    rack: Rack, client: OxideClient, make_coordinator: CoordinatorFactory
) -> None:
    clock = Clock()
    coord = await make_coordinator(hot=HotAttach(client, timeout=60, clock=clock))
    (disk,) = await rack.disks("rebooted", 1)
    await coord.attach(disk.id, INSTANCE, deadline=soon())
    await rack.stop(INSTANCE)
    await client.start_instance(INSTANCE)
    await client.wait_instance(INSTANCE, {"running"})

    clock.now += 3600
    assert (await coord.attach(disk.id, INSTANCE, deadline=soon())).already_attached
    assert await rack.cycles(INSTANCE) == (1, 1)  # only the test's own


def test_refusal_is_status_and_code_not_text() -> None:
    text = "cannot attach disk: instance is not fully stopped"
    assert is_refusal(
        api_errors.OxideInvalidRequest("anything", status=400, error_code="InvalidRequest")
    )
    assert not is_refusal(api_errors.OxideInvalidRequest(text, status=400, error_code=None))
    assert not is_refusal(api_errors.OxideServerError(text, status=500, error_code="Internal"))
