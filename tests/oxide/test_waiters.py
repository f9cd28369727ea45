"""Waiters: poll until a state is reached, fail fast on a dead end, give up at the deadline.

The simulator's transition durations make the intermediate states observable: the call that
starts a transition answers with the intermediate state, and the traffic log shows what the
waiter's polls saw.
"""

from __future__ import annotations

import pytest

from oxide_csi.oxide import api_errors
from tests.oxide.conftest import ClientFactory, SimFactory
from tests.oxide.simkit import GIB, Sim, deadline_in, lift_faults_after


def _states_seen(sim: Sim, template: str, key: str) -> list[str]:
    seen: list[str] = []
    for r in sim.requests():
        if r["method"] == "GET" and r["template"] == template and r["status"] == 200:
            body = r["response_body"]
            state = body["state"]["state"] if key == "disk" else body[key]
            if not seen or seen[-1] != state:
                seen.append(state)
    return seen


async def test_disk_creating_to_detached(
    sim_factory: SimFactory, client_factory: ClientFactory
) -> None:
    sim = sim_factory(disk_create_seconds=0.1)
    client, _ = client_factory(sim)
    disk = await client.create_disk("w-disk", size=GIB)
    assert disk.state == "creating"
    done = await client.wait_disk(disk.id, deadline=deadline_in(5))
    assert done.state == "detached"
    assert _states_seen(sim, "/v1/disks/{disk}", "disk")[-1:] == ["detached"]


async def test_snapshot_creating_to_ready(
    sim_factory: SimFactory, client_factory: ClientFactory
) -> None:
    sim = sim_factory(snapshot_create_seconds=0.1)
    client, _ = client_factory(sim)
    await client.create_disk("w-src", size=GIB)
    snap = await client.create_snapshot("w-snap", disk="w-src")
    assert snap.state == "creating"
    assert (await client.wait_snapshot("w-snap", deadline=deadline_in(5))).state == "ready"
    assert _states_seen(sim, "/v1/snapshots/{snapshot}", "state")[-1:] == ["ready"]


async def test_instance_stopping_to_stopped_and_starting_to_running(
    sim_factory: SimFactory, client_factory: ClientFactory
) -> None:
    sim = sim_factory(stop_seconds=0.1, start_seconds=0.1)
    client, _ = client_factory(sim)
    assert (await client.stop_instance("instance-0")).run_state == "stopping"
    stopped = await client.wait_instance("instance-0", {"stopped"}, deadline=deadline_in(5))
    assert stopped.run_state == "stopped"
    assert (await client.start_instance("instance-0")).run_state == "starting"
    running = await client.wait_instance("instance-0", {"running"}, deadline=deadline_in(5))
    assert running.run_state == "running"
    seen = _states_seen(sim, "/v1/instances/{instance}", "run_state")
    # Polls saw the states in order (a slow machine may skip the short-lived ones).
    order = ["stopping", "stopped", "starting", "running"]
    assert seen == sorted(seen, key=order.index)
    assert {"stopped", "running"} <= set(seen)


async def test_wait_gives_up_at_the_deadline(
    sim_factory: SimFactory, client_factory: ClientFactory
) -> None:
    sim = sim_factory(stop_seconds=30.0)
    client, rec = client_factory(sim)
    await client.stop_instance("instance-1")
    with pytest.raises(api_errors.OxideTimeout, match="last seen stopping"):
        await client.wait_instance("instance-1", {"stopped"}, deadline=deadline_in(0.15))
    assert rec.count("GET", "/v1/instances/{instance}") >= 1


async def test_wait_without_deadline_uses_wait_timeout(
    sim_factory: SimFactory, client_factory: ClientFactory
) -> None:
    sim = sim_factory(disk_create_seconds=30.0)
    # 1 s, not 0.1 s: the wait must see the disk at least once before it gives up (a loaded
    # machine took longer than 0.1 s for the first GET, and the message said "never seen").
    client, _ = client_factory(sim, wait_timeout=1.0)
    await client.create_disk("w-slow", size=GIB)
    with pytest.raises(api_errors.OxideTimeout, match="last seen creating"):
        await client.wait_disk("w-slow")


async def test_faulted_disk_ends_the_wait(
    sim_factory: SimFactory, client_factory: ClientFactory
) -> None:
    sim = sim_factory(disk_create_seconds=30.0)
    client, _ = client_factory(sim)
    disk = await client.create_disk("w-bad", size=GIB)
    sim.fault_disk(disk.id)
    with pytest.raises(api_errors.OxideUnexpectedState) as caught:
        await client.wait_disk(disk.id, deadline=deadline_in(5))
    assert (caught.value.kind, caught.value.state) == ("disk", "faulted")


async def test_wanted_fail_state_is_returned(sim: Sim, client_factory: ClientFactory) -> None:
    client, _ = client_factory(sim)
    disk = await client.create_disk("w-want", size=GIB)
    sim.fault_disk(disk.id)
    got = await client.wait_disk(disk.id, {"faulted"}, deadline=deadline_in(5))
    assert got.state == "faulted"


async def test_wait_rides_out_transient_failures(
    sim_factory: SimFactory, client_factory: ClientFactory
) -> None:
    sim = sim_factory(disk_create_seconds=0.1)
    client, rec = client_factory(sim, max_attempts=1)  # no retries: the waiter must cope
    await client.create_disk("w-flaky", size=GIB)
    sim.faults(error_rate=1.0, error_statuses=[503], path_regex="^/v1/disks/w-flaky$")
    rec.after = lift_faults_after(sim, "GET", "/v1/disks/{disk}", times=2)
    assert (await client.wait_disk("w-flaky", deadline=deadline_in(5))).state == "detached"
    polls = [a.status for a in rec.attempts if a.template == "/v1/disks/{disk}"]
    assert polls[:3] == [503, 503, 200]


async def test_wait_for_a_missing_resource_fails_at_once(
    sim: Sim, client_factory: ClientFactory
) -> None:
    client, rec = client_factory(sim)
    with pytest.raises(api_errors.OxideNotFound):
        await client.wait_disk("w-none", deadline=deadline_in(5))
    assert len(rec.attempts) == 1


async def test_a_failed_instance_the_rack_restarts_is_waited_for(
    sim_factory: SimFactory, client_factory: ClientFactory
) -> None:
    sim = sim_factory(auto_restart_seconds=0.2)
    client, _ = client_factory(sim)
    sim.fail_instance("instance-0")
    back = await client.wait_instance("instance-0", {"running"}, deadline=deadline_in(10))
    assert back.run_state == "running" and back.time_last_auto_restarted is not None
    assert "failed" in _states_seen(sim, "/v1/instances/{instance}", "run_state")

    # Failed again within the cooldown (an hour): the rack will not restart it in time.
    sim.fail_instance("instance-0")
    with pytest.raises(api_errors.OxideUnexpectedState, match="failed"):
        await client.wait_instance("instance-0", {"running"}, deadline=deadline_in(10))


async def test_a_failed_instance_whose_policy_is_never_ends_the_wait(
    sim_factory: SimFactory, client_factory: ClientFactory
) -> None:
    sim = sim_factory(auto_restart_seconds=0.2)
    client, _ = client_factory(sim)
    sim.auto_restart_policy("instance-0", "never")
    sim.fail_instance("instance-0")
    with pytest.raises(api_errors.OxideUnexpectedState, match="failed"):
        await client.wait_instance("instance-0", {"running"}, deadline=deadline_in(10))
