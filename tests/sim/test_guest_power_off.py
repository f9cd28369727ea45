"""The guest power-off hook: a guest that shuts itself down, counted apart from hard stops."""

from __future__ import annotations

import httpx

from tests.sim.conftest import SimFactory
from tests.sim.helpers import P, assert_error, client, instance, wait_run_state


def test_guest_power_off_stops_without_a_hard_stop(make_sim: SimFactory) -> None:
    sim = make_sim(stop_seconds=0.2, start_seconds=0.1)
    with client(sim) as c:
        before = instance(c)
        r = c.post(f"/sim/instances/{before['id']}/guest-power-off")
        assert r.status_code == 202, r.text
        assert r.json()["run_state"] == "stopping"
        # the guest is shutting down: it cannot be asked to again
        assert_error(c.post("/sim/instances/instance-0/guest-power-off"), 409, "Conflict")
        wait_run_state(c, "instance-0", "stopped")
        stats = c.get("/sim/stats").json()["instances"]["instance-0"]
        assert (stats["guest_power_offs"], stats["hard_stops"], stats["stops"]) == (1, 0, 0)
        assert stats["state"] == "stopped", "Oxide does not start a guest that shut down"
        assert instance(c)["time_run_state_updated"] > before["time_run_state_updated"]

        # a hard stop is counted as one, and only a running guest can power itself off
        c.post("/v1/instances/instance-0/start", params=P)
        wait_run_state(c, "instance-0", "running")
        c.post("/v1/instances/instance-0/stop", params=P)
        assert_error(c.post("/sim/instances/instance-0/guest-power-off"), 409, "Conflict")
        wait_run_state(c, "instance-0", "stopped")
        stats = c.get("/sim/stats").json()["instances"]
        assert (stats["instance-0"]["guest_power_offs"], stats["instance-0"]["hard_stops"]) == (
            1,
            1,
        )
        assert (stats["instance-1"]["guest_power_offs"], stats["instance-1"]["hard_stops"]) == (
            0,
            0,
        )


def test_guest_power_off_of_an_unknown_instance_is_404(make_sim: SimFactory) -> None:
    sim = make_sim()
    r = httpx.post(f"{sim.url}/sim/instances/nope/guest-power-off", timeout=10)
    assert r.status_code == 404, r.text
