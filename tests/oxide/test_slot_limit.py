"""The controller's slot limit from the rack's generation, and its start-up announcement (here
for the simulator and client fixtures of the Oxide client tests)."""

from __future__ import annotations

import asyncio

import pytest
import structlog

from oxide_csi.controller.slots import announce_generation, fixed_slot_limit, rack_slot_limit
from tests.oxide.conftest import ClientFactory, SimFactory
from tests.oxide.simkit import lift_faults_after


@pytest.mark.parametrize(
    ("release", "ceiling", "expected"),
    [(17, None, 8), (22, None, 12), (22, 8, 8), (17, 12, 8), (22, 20, 12)],
)
async def test_the_flag_only_lowers_the_racks_limit(
    sim_factory: SimFactory,
    client_factory: ClientFactory,
    release: int,
    ceiling: int | None,
    expected: int,
) -> None:
    client, _ = client_factory(sim_factory(release=release))
    assert await rack_slot_limit(client, ceiling)(1e12) == expected


async def test_fixed_limit() -> None:
    assert await fixed_slot_limit(3)(0.0) == 3
    with pytest.raises(ValueError):
        fixed_slot_limit(0)


async def test_announcement_waits_for_an_unreachable_rack_and_logs_once(
    sim_factory: SimFactory, client_factory: ClientFactory
) -> None:
    sim = sim_factory(release=17)
    client, recorder = client_factory(sim, max_attempts=1)
    sim.faults(error_rate=1.0, error_statuses=[503], path_regex="^/v1/me$")
    recorder.after = lift_faults_after(sim, "GET", "/v1/me", times=2)
    with structlog.testing.capture_logs() as logs:
        await asyncio.wait_for(announce_generation(client, first_pause=0.01), timeout=30)
    events = [entry["event"] for entry in logs]
    assert events.count("cannot find out the Oxide API generation yet") == 2
    assert events.count("detected Oxide API generation") == 1
    found = next(e for e in logs if e["event"] == "detected Oxide API generation")
    assert found["disk_slots_per_instance"] == 8
