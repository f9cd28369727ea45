"""Non-idempotent requests whose outcome is unknown are resolved by lookup, never re-sent
blindly.

The simulator's fault phase ``after`` applies the request and then drops the connection (or
answers 5xx), which is exactly the case where the client cannot know whether its POST took
effect. The simulator's counters prove how many POSTs reached it, and its instance counters
how many stops and starts really happened.
"""

from __future__ import annotations

import pytest

from oxide_csi.oxide import OxideClient, api_errors
from tests.oxide.conftest import ClientFactory
from tests.oxide.simkit import GIB, Sim, lift_faults_after

POST_DISKS = "POST /v1/disks"
VIEW_DISK = "GET /v1/disks/{disk}"


@pytest.mark.parametrize(
    "fault",
    [
        {"drop_rate": 1.0},
        {"error_rate": 1.0, "error_statuses": [500]},
        {"error_rate": 1.0, "error_statuses": [502]},
        {"error_rate": 1.0, "error_statuses": [504]},
    ],
)
async def test_create_disk_applied_but_unanswered_is_found_not_reposted(
    sim: Sim, client: OxideClient, fault: dict[str, object]
) -> None:
    # Only the POST path is faulted; the lookup (GET /v1/disks/{disk}) goes through.
    sim.faults(phase="after", path_regex="^/v1/disks$", **fault)
    disk = await client.create_disk("amb-a", size=2 * GIB, description="d")
    assert (disk.name, disk.size, disk.description) == ("amb-a", 2 * GIB, "d")
    assert sim.hits(POST_DISKS) == 1
    assert sim.hits(VIEW_DISK) == 1


async def test_create_disk_not_applied_is_looked_up_then_repeated(
    sim: Sim, client_factory: ClientFactory
) -> None:
    client, rec = client_factory(sim)
    sim.faults(drop_rate=1.0, phase="before", path_regex="^/v1/disks$")
    rec.after = lift_faults_after(sim, "POST", "/v1/disks")
    disk = await client.create_disk("amb-b", size=GIB)
    assert disk.state == "creating"  # the repeated POST's 201
    # Lookup found nothing, so the create did not happen and was sent once more.
    assert sim.hits(POST_DISKS) == 2
    assert sim.hits(VIEW_DISK) == 1


async def test_create_disk_after_503_repeats_and_resolves_already_exists(
    sim: Sim, client_factory: ClientFactory
) -> None:
    """503 normally means "not processed", so the POST is repeated directly; if the first try
    did land after all, the repeat's ObjectAlreadyExists is resolved by lookup."""
    client, rec = client_factory(sim)
    sim.faults(error_rate=1.0, error_statuses=[503], phase="after", path_regex="^/v1/disks$")
    rec.after = lift_faults_after(sim, "POST", "/v1/disks")
    disk = await client.create_disk("amb-c", size=GIB)
    assert disk.name == "amb-c"
    assert [a.status for a in rec.attempts if a.method == "POST"] == [503, 400]
    assert sim.hits(VIEW_DISK) == 1


async def test_create_disk_ambiguous_but_name_taken_by_another_disk(
    sim: Sim, client: OxideClient
) -> None:
    await client.create_disk("amb-d", size=GIB)
    sim.faults(drop_rate=1.0, phase="after", path_regex="^/v1/disks$")
    with pytest.raises(api_errors.OxideAlreadyExists, match="different size"):
        await client.create_disk("amb-d", size=3 * GIB)
    assert sim.hits(POST_DISKS) == 2  # the first create, and ours, once


async def test_create_disk_ambiguous_with_other_read_only_flag(
    sim: Sim, client: OxideClient
) -> None:
    await client.create_disk("amb-ro-src", size=GIB)
    snap = await client.create_snapshot("amb-ro-snap", disk="amb-ro-src")
    await client.create_disk("amb-ro", size=GIB, snapshot_id=snap.id)
    sim.faults(drop_rate=1.0, phase="after", path_regex="^/v1/disks$")
    with pytest.raises(api_errors.OxideAlreadyExists, match="read-only flag"):
        await client.create_disk("amb-ro", size=GIB, snapshot_id=snap.id, read_only=True)
    # Same properties: the existing disk is ours.
    same = await client.create_disk("amb-ro", size=GIB, snapshot_id=snap.id)
    assert same.snapshot_id == snap.id


async def test_create_disk_never_reposted_when_lookup_is_impossible(
    sim: Sim, client_factory: ClientFactory
) -> None:
    client, _ = client_factory(sim, max_attempts=3)
    # Everything under /v1/disks fails after acting: the lookup cannot answer either.
    sim.faults(drop_rate=1.0, phase="after", path_regex="^/v1/disks")
    with pytest.raises(api_errors.OxideUnavailable):
        await client.create_disk("amb-e", size=GIB)
    assert sim.hits(POST_DISKS) == 1
    assert sim.hits(VIEW_DISK) == 3
    sim.no_faults()
    assert (await client.get_disk("amb-e")).size == GIB  # it was created, exactly once


async def test_create_snapshot_applied_but_unanswered(sim: Sim, client: OxideClient) -> None:
    await client.create_disk("amb-src", size=GIB)
    sim.faults(drop_rate=1.0, phase="after", path_regex="^/v1/snapshots$")
    snap = await client.create_snapshot("amb-snap", disk="amb-src", description="s")
    assert snap.name == "amb-snap"
    assert sim.hits("POST /v1/snapshots") == 1
    sim.no_faults()
    assert [s.name async for s in client.list_snapshots()] == ["amb-snap"]


async def test_create_snapshot_ambiguous_of_another_disk_is_already_exists(
    sim: Sim, client: OxideClient
) -> None:
    await client.create_disk("amb-x", size=GIB)
    await client.create_disk("amb-y", size=GIB)
    await client.create_snapshot("amb-s2", disk="amb-x")
    sim.faults(drop_rate=1.0, phase="after", path_regex="^/v1/snapshots$")
    with pytest.raises(api_errors.OxideAlreadyExists, match="source disk"):
        await client.create_snapshot("amb-s2", disk="amb-y")


async def test_stop_applied_but_unanswered_is_not_repeated(sim: Sim, client: OxideClient) -> None:
    sim.faults(drop_rate=1.0, phase="after", path_regex="/stop$")
    inst = await client.stop_instance("instance-0")
    assert inst.run_state in ("stopping", "stopped")
    assert sim.hits("POST /v1/instances/{instance}/stop") == 1
    assert sim.instance_stats()["instance-0"]["stops"] == 1


async def test_stop_not_applied_is_looked_up_then_repeated(
    sim: Sim, client_factory: ClientFactory
) -> None:
    client, rec = client_factory(sim)
    sim.faults(error_rate=1.0, error_statuses=[500], phase="before", path_regex="/stop$")
    rec.after = lift_faults_after(sim, "POST", "/v1/instances/{instance}/stop")
    await client.stop_instance("instance-1")
    assert [a.template for a in rec.attempts] == [
        "/v1/instances/{instance}/stop",
        "/v1/instances/{instance}",  # the lookup: still running, so the stop did not happen
        "/v1/instances/{instance}/stop",
    ]
    assert sim.instance_stats()["instance-1"]["stops"] == 1


async def test_start_applied_but_unanswered_is_not_repeated(sim: Sim, client: OxideClient) -> None:
    await client.stop_instance("instance-0")
    await client.wait_instance("instance-0", {"stopped"})
    sim.faults(drop_rate=1.0, phase="after", path_regex="/start$")
    inst = await client.start_instance("instance-0")
    assert inst.run_state in ("starting", "running")
    assert sim.hits("POST /v1/instances/{instance}/start") == 1
    assert sim.instance_stats()["instance-0"]["starts"] == 1


async def test_attach_and_detach_applied_but_unanswered(sim: Sim, client: OxideClient) -> None:
    disk = await client.create_disk("amb-att", size=GIB)
    inst = await client.stop_instance("instance-1")
    await client.wait_instance(inst.id, {"stopped"})
    sim.faults(drop_rate=1.0, phase="after", path_regex="/disks/(attach|detach)$")

    attached = await client.attach_disk("instance-1", "amb-att")
    assert (attached.id, attached.state, attached.instance_id) == (disk.id, "attached", inst.id)
    assert sim.hits("POST /v1/instances/{instance}/disks/attach") == 1

    detached = await client.detach_disk(inst.id, disk.id)
    assert (detached.state, detached.instance_id) == ("detached", None)
    assert sim.hits("POST /v1/instances/{instance}/disks/detach") == 1


async def test_attach_refused_after_ambiguous_try_is_not_resolved_as_done(
    sim: Sim, client_factory: ClientFactory
) -> None:
    """The lookup decides on facts: a disk attached to *another* instance is no success, so
    the repeat's refusal stands."""
    client, rec = client_factory(sim)
    await client.create_disk("amb-other", size=GIB)
    for name in ("instance-0", "instance-1"):
        await client.stop_instance(name)
        await client.wait_instance(name, {"stopped"})
    await client.attach_disk("instance-0", "amb-other")
    sim.faults(error_rate=1.0, error_statuses=[500], phase="before", path_regex="/attach$")
    rec.after = lift_faults_after(sim, "POST", "/v1/instances/{instance}/disks/attach")
    with pytest.raises(api_errors.OxideInvalidRequest, match="attached to another instance"):
        await client.attach_disk("instance-1", "amb-other")
    attach = "/v1/instances/{instance}/disks/attach"
    assert [a.status for a in rec.attempts if a.template == attach] == [202, 500, 400]
    assert (await client.get_disk("amb-other")).instance_id == (
        await client.get_instance("instance-0")
    ).id
