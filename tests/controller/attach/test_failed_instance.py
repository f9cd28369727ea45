"""A ``failed`` instance: stopped (which cancels Oxide's restart of it), then attached to, and
started again exactly when Oxide would have restarted it."""

from __future__ import annotations

import httpx

from oxide_csi.controller.attach.power import wait_stopped
from oxide_csi.oxide import OxideClient
from oxide_sim import SimConfig, SimulatorServer
from tests.controller.attach.conftest import (
    TOKEN,
    CoordinatorFactory,
    Rack,
    client_config,
    soon,
)

INSTANCE = "instance-0"


async def _fail(rack: Rack, policy: str | None) -> None:
    async with httpx.AsyncClient(base_url=rack.sim.url) as http:
        url = f"/sim/instances/{INSTANCE}/auto-restart-policy"
        (await http.put(url, json={"policy": policy})).raise_for_status()
        (await http.post(f"/sim/instances/{INSTANCE}/fail")).raise_for_status()
    assert await rack.run_state(INSTANCE) == "failed"


async def test_a_failed_instance_oxide_would_restart_is_attached_and_started(
    rack: Rack, make_coordinator: CoordinatorFactory
) -> None:
    coord = await make_coordinator()
    (disk,) = await rack.disks("failed-ar", 1)
    await _fail(rack, None)  # the default policy: best effort
    await coord.attach(disk.id, INSTANCE, deadline=soon())
    assert await rack.disk_on(disk.id) == await rack.instance_id(INSTANCE)
    assert await rack.run_state(INSTANCE) == "running"
    _, starts = await rack.cycles(INSTANCE)
    assert starts == 1, "our stop cancelled Oxide's restart, so the cycle made it"


async def test_a_failed_instance_with_policy_never_stays_down(
    rack: Rack, make_coordinator: CoordinatorFactory
) -> None:
    coord = await make_coordinator()
    (disk,) = await rack.disks("failed-never", 1)
    await _fail(rack, "never")
    await coord.attach(disk.id, INSTANCE, deadline=soon())
    assert await rack.disk_on(disk.id) == await rack.instance_id(INSTANCE)
    assert await rack.run_state(INSTANCE) == "stopped", "Oxide would not have restarted it"
    assert await rack.cycles(INSTANCE) == (0, 0)


async def test_a_vmm_that_dies_while_stopping_still_ends_stopped() -> None:
    """Oxide does not restart it (it was meant to stop); the wait stops it once more."""
    cfg = SimConfig(token=TOKEN, instances=1, stop_seconds=300, auto_restart_seconds=0.01)
    with SimulatorServer(cfg) as sim:
        async with OxideClient(client_config(sim.url)) as client:
            assert (await client.stop_instance(INSTANCE)).run_state == "stopping"
            async with httpx.AsyncClient(base_url=sim.url) as http:
                (await http.post(f"/sim/instances/{INSTANCE}/fail")).raise_for_status()
            done = await wait_stopped(client, INSTANCE, deadline=soon(10))
            assert done.run_state == "stopped"
