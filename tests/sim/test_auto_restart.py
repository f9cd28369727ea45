"""Failed instances and the control plane's automatic restart, per the instance's policy.

Where a test must show that something did *not* happen, it fails a second instance after the
first: the simulator runs due transitions in order, so once the second instance has been
restarted, the first one's restart would have happened already.
"""

from __future__ import annotations

import httpx

from tests.sim.conftest import SimFactory
from tests.sim.helpers import P, client, instance, stop_instance, wait_run_state


def _fail(c: httpx.Client, name: str) -> dict[str, object]:
    r = c.post(f"/sim/instances/{name}/fail")
    assert r.status_code == 200, r.text
    body: dict[str, object] = r.json()
    return body


def _policy(c: httpx.Client, name: str, policy: str | None) -> None:
    r = c.put(f"/sim/instances/{name}/auto-restart-policy", json={"policy": policy})
    assert r.status_code == 200, r.text


def test_a_failed_instance_is_restarted_and_then_cools_down(make_sim: SimFactory) -> None:
    sim = make_sim(auto_restart_seconds=0.05)
    with client(sim) as c:
        failed = _fail(c, "instance-0")
        assert failed["run_state"] == "failed"
        assert failed["auto_restart_enabled"] is True and failed["auto_restart_policy"] is None
        assert failed["time_last_auto_restarted"] is None
        wait_run_state(c, "instance-0", "running")
        back = instance(c)
        assert back["time_last_auto_restarted"] is not None
        assert back["auto_restart_cooldown_expiration"] > back["time_last_auto_restarted"]
        stats = c.get("/sim/stats").json()["instances"]["instance-0"]
        assert stats["starts"] == 0, "the control plane's restart is not a user's start"

        # Within the cooldown a second failure stays failed: instance-1 fails later and is
        # restarted, so instance-0's restart would have been due before it.
        _fail(c, "instance-0")
        _fail(c, "instance-1")
        wait_run_state(c, "instance-1", "running")
        assert instance(c)["run_state"] == "failed"


def test_policy_never_and_a_stop_both_cancel_the_restart(make_sim: SimFactory) -> None:
    sim = make_sim(auto_restart_seconds=0.05, instances=3)
    with client(sim) as c:
        _policy(c, "instance-0", "never")
        assert instance(c)["auto_restart_enabled"] is False
        assert instance(c)["auto_restart_policy"] == "never"
        _fail(c, "instance-0")
        _fail(c, "instance-1")
        r = c.post("/v1/instances/instance-1/stop", params=P)
        assert r.json()["run_state"] == "stopped", "a failed instance stops at once"
        _fail(c, "instance-2")
        wait_run_state(c, "instance-2", "running")
        assert instance(c, "instance-0")["run_state"] == "failed"
        assert instance(c, "instance-1")["run_state"] == "stopped"


def test_a_failure_during_a_stop_is_not_restarted(make_sim: SimFactory) -> None:
    """The user asked for stopped: Nexus restarts only instances intended to run."""
    sim = make_sim(auto_restart_seconds=0.05, stop_seconds=30)
    with client(sim) as c:
        assert c.post("/v1/instances/instance-0/stop", params=P).json()["run_state"] == "stopping"
        _fail(c, "instance-0")
        _fail(c, "instance-1")
        wait_run_state(c, "instance-1", "running")
        assert instance(c)["run_state"] == "failed"


def test_hook_errors(api: httpx.Client) -> None:
    assert api.post("/sim/instances/nope/fail").status_code == 404
    r = api.put("/sim/instances/instance-0/auto-restart-policy", json={"policy": "always"})
    assert r.status_code == 400
    assert api.put("/sim/instances/instance-0/auto-restart-policy", json={}).status_code == 400
    stop_instance(api)
    assert api.post("/sim/instances/instance-0/fail").status_code == 400, "no VMM to fail"
