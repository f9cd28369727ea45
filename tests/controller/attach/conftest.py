"""Fixtures for the attach coordinator: a simulated rack on loopback and a real client to it.

The simulator's stop and start take 50 ms and the client polls every 10-50 ms, so a whole
power cycle is well under a second; counts from ``/sim/stats`` (not clocks) are what tests
assert on.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from oxide_csi.controller.attach import AttachCoordinator, StartPolicy
from oxide_csi.controller.attach.records import AttachRecordStore
from oxide_csi.oxide import Disk, OxideClient, OxideConfig
from oxide_sim import SimConfig, SimulatorServer
from tests.controller.attach.memory_store import MemoryAttachRecordStore
from tests.controller.held_stops import hold_stops

TOKEN = "attach-test-token"
GIB = 1 << 30


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimulatorServer]:
    cfg = SimConfig(
        token=TOKEN,
        instances=2,
        stop_seconds=0.05,
        start_seconds=0.05,
        max_disks_per_instance=8,
        state_dir=tmp_path / "sim",
    )
    with SimulatorServer(cfg) as server:
        yield server


@contextlib.contextmanager
def marked_rack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SimulatorServer]:
    """A rack with the simulator's default slots, a hot-plug one for tests marked ``hotplug``."""
    cfg = SimConfig(
        token=TOKEN,
        instances=2,
        stop_seconds=0.05,
        start_seconds=0.05,
        state_dir=tmp_path / "sim",
        hotplug=request.node.get_closest_marker("hotplug") is not None,
    )
    with SimulatorServer(cfg) as server:
        yield server


def client_config(url: str) -> OxideConfig:
    return OxideConfig(
        host=url,
        token=TOKEN,
        project="default",
        poll_initial=0.01,
        poll_max=0.05,
        backoff_base=0.01,
        backoff_max=0.05,
    )


@pytest.fixture
async def client(sim: SimulatorServer) -> AsyncIterator[OxideClient]:
    async with OxideClient(client_config(sim.url)) as c:
        yield c


class Rack:
    """Test-side helpers around the simulator: make disks, read counters, inject faults."""

    def __init__(self, sim: SimulatorServer, client: OxideClient) -> None:
        self.sim = sim
        self.client = client

    async def disks(self, prefix: str, n: int) -> list[Disk]:
        made = [self.client.create_disk(f"{prefix}-{i}", size=GIB) for i in range(n)]
        return list(await asyncio.gather(*made))

    async def stats(self) -> dict[str, Any]:
        async with httpx.AsyncClient() as http:
            response = await http.get(f"{self.sim.url}/sim/stats")
            response.raise_for_status()
            body: dict[str, Any] = response.json()
            return body

    async def cycles(self, instance: str) -> tuple[int, int]:
        """(stops, starts) the simulator counted for ``instance``."""
        entry = (await self.stats())["instances"][instance]
        return int(entry["stops"]), int(entry["starts"])

    async def requests(self, key: str) -> int:
        return int((await self.stats())["requests"].get(key, 0))

    async def fail_starts(self, instance: str, count: int) -> None:
        async with httpx.AsyncClient() as http:
            url = f"{self.sim.url}/sim/instances/{instance}/start-failures"
            response = await http.post(url, json={"count": count})
            response.raise_for_status()

    async def run_state(self, instance: str) -> str:
        return (await self.client.get_instance(instance)).run_state

    async def disk_on(self, disk: str) -> str | None:
        """The id of the instance ``disk`` is attached to, None if detached."""
        found = await self.client.get_disk(disk)
        return found.instance_id if found.state == "attached" else None

    async def instance_id(self, instance: str) -> str:
        return (await self.client.get_instance(instance)).id

    async def wait_run_state(self, instance: str, states: set[str]) -> None:
        """Until ``instance`` is in one of ``states`` (reached by the code under test)."""
        end = time.monotonic() + 10
        while await self.run_state(instance) not in states:
            if time.monotonic() > end:
                raise AssertionError(f"{instance} never reached {sorted(states)}")
            await asyncio.sleep(0.005)

    async def stop(self, instance: str) -> None:
        await self.client.stop_instance(instance)
        await self.client.wait_instance(instance, {"stopped"})


@contextlib.asynccontextmanager
async def rack_of(**config: Any) -> AsyncIterator[Rack]:
    """A rack of its own for tests that need other simulator settings than ``sim``'s."""
    cfg = SimConfig(**{"token": TOKEN, "stop_seconds": 0.05, "start_seconds": 0.05, **config})
    with SimulatorServer(cfg) as server:
        async with OxideClient(client_config(server.url)) as c:
            yield Rack(server, c)


@pytest.fixture
def rack(sim: SimulatorServer, client: OxideClient) -> Rack:
    return Rack(sim, client)


CoordinatorFactory = Callable[..., Awaitable[AttachCoordinator]]


@pytest.fixture
async def make_coordinator(client: OxideClient) -> AsyncIterator[CoordinatorFactory]:
    """Build started coordinators with test-sized timings; all are closed at teardown."""
    made: list[AttachCoordinator] = []

    async def factory(
        *, record: AttachRecordStore | None = None, start: bool = True, **kwargs: Any
    ) -> AttachCoordinator:
        kwargs.setdefault("batch_window", 0.1)
        kwargs.setdefault("op_timeout", 30.0)
        kwargs.setdefault("start_policy", StartPolicy(initial=0.02, maximum=0.1))
        coord = AttachCoordinator(client, record=record or MemoryAttachRecordStore(), **kwargs)
        made.append(coord)
        if start:
            await coord.start()
        return coord

    yield factory
    for coord in made:
        await coord.close()


@pytest.fixture
def held_stops(client: OxideClient, monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """The coordinators' instance stops wait for this event (``tests/controller/held_stops``)."""
    return hold_stops(client, monkeypatch)


def soon(seconds: float = 30.0) -> float:
    """A deadline far enough away that only a bug (a hang) reaches it."""
    return time.monotonic() + seconds


async def until(predicate: Callable[[], bool], what: str, limit: float = 10.0) -> None:
    """Wait for a condition the code under test reaches on its own (not a timing assertion)."""
    end = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.005)
