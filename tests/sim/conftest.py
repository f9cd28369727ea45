"""Fixtures: a simulator in this process (real HTTP on loopback) built from a SimConfig."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from oxide_sim import SimConfig, SimulatorServer
from tests.sim.helpers import TOKEN, client

SimFactory = Callable[..., SimulatorServer]


@pytest.fixture
def make_sim() -> Iterator[SimFactory]:
    """Start simulators with ``SimConfig(token=TOKEN, **overrides)``; all stopped at teardown."""
    started: list[SimulatorServer] = []

    def make(**overrides: Any) -> SimulatorServer:
        cfg = SimConfig(**{"token": TOKEN, "instances": 2, **overrides})
        server = SimulatorServer(cfg)
        server.start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture
def sim(make_sim: SimFactory) -> SimulatorServer:
    return make_sim()


@pytest.fixture
def api(sim: SimulatorServer) -> Iterator[httpx.Client]:
    with client(sim) as c:
        yield c
