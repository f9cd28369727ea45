"""Fixtures of the Oxide client tests: an in-process simulator on loopback and clients of it.

Each simulator writes its traffic log to a private file, so a test can read back exactly what
the client sent (headers, query, body). When ``OXIDE_SIM_TRAFFIC_LOG`` is set (the CI
conformance run), the private log is appended to it at teardown, so CI sees every exchange.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from oxide_csi.oxide import OxideClient
from oxide_sim import SimConfig, SimulatorServer
from tests.oxide.simkit import PROJECT, TOKEN, Recorder, Sim, client_config

_TRAFFIC_ENV = "OXIDE_SIM_TRAFFIC_LOG"

SimFactory = Callable[..., Sim]
ClientFactory = Callable[..., tuple[OxideClient, Recorder]]


@pytest.fixture
def sim_factory(tmp_path: Path) -> Iterator[SimFactory]:
    """Start simulators with short durations; keyword arguments override ``SimConfig``."""
    started: list[Sim] = []

    def make(**overrides: Any) -> Sim:
        traffic = tmp_path / f"traffic-{len(started)}.jsonl"
        settings: dict[str, Any] = {
            "token": TOKEN,
            "project": PROJECT,
            "instances": 2,
            "stop_seconds": 0.02,
            "start_seconds": 0.02,
            "traffic_log": traffic,
        }
        settings.update(overrides)
        server = SimulatorServer(SimConfig(**settings))
        server.start()
        sim = Sim(server, traffic)
        started.append(sim)
        return sim

    yield make
    shared = os.environ.get(_TRAFFIC_ENV)
    for sim in started:
        sim.close()
        sim.server.stop()
        if shared and sim.traffic.exists():
            with open(shared, "a", encoding="utf-8") as out:
                out.write(sim.traffic.read_text(encoding="utf-8"))


@pytest.fixture
def sim(sim_factory: SimFactory) -> Sim:
    """A simulator with default (short) durations and two running instances."""
    return sim_factory()


@pytest.fixture
async def client_factory() -> AsyncIterator[ClientFactory]:
    """Make clients of a simulator, each with its own ``Recorder``; all closed at teardown."""
    made: list[OxideClient] = []

    def make(target: Sim, **overrides: Any) -> tuple[OxideClient, Recorder]:
        recorder = Recorder()
        client = OxideClient(client_config(target.url, **overrides), on_request=recorder)
        made.append(client)
        return client, recorder

    yield make
    for client in made:
        await client.aclose()


@pytest.fixture
def client(sim: Sim, client_factory: ClientFactory) -> OxideClient:
    """A client of ``sim`` with fast retries and the default User-Agent."""
    return client_factory(sim)[0]
