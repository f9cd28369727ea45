"""Oxide's ``NameOrId`` rules and the pagination walk, as the client speaks them over HTTP.

The simulator answers 400 to a UUID sent with ``project`` and to a name sent without it, as
Nexus does, so these tests fail if the client gets either rule wrong; the traffic log shows
the exact query strings on top.
"""

from __future__ import annotations

import uuid

import pytest

from oxide_csi.oxide import OxideClient, api_errors, is_uuid
from tests.oxide.conftest import ClientFactory
from tests.oxide.simkit import GIB, PROJECT, Sim


def _queries(sim: Sim, method: str, template: str) -> list[dict[str, str]]:
    return [
        r["query"]
        for r in sim.requests()
        if r["method"] == method and r["template"] == template and 200 <= r["status"] < 300
    ]


async def test_name_carries_project_and_uuid_does_not(sim: Sim, client: OxideClient) -> None:
    disk = await client.create_disk("sel-disk", size=GIB)
    inst = await client.get_instance("instance-0")
    await client.get_instance(inst.id)
    await client.get_disk("sel-disk")
    await client.get_disk(disk.id.upper())  # UUIDs are case-insensitive
    await client.get_disk(uuid.UUID(disk.id))
    snap = await client.create_snapshot("sel-snap", disk=disk.id)
    await client.get_snapshot(snap.id)
    await client.get_snapshot("sel-snap")
    await client.delete_snapshot(snap.id)
    await client.delete_disk(disk.id)

    assert _queries(sim, "GET", "/v1/instances/{instance}") == [{"project": PROJECT}, {}]
    assert _queries(sim, "GET", "/v1/disks/{disk}") == [{"project": PROJECT}, {}, {}]
    assert _queries(sim, "GET", "/v1/snapshots/{snapshot}") == [{}, {"project": PROJECT}]
    assert _queries(sim, "DELETE", "/v1/snapshots/{snapshot}") == [{}]
    assert _queries(sim, "DELETE", "/v1/disks/{disk}") == [{}]


async def test_attach_by_ids_sends_no_project(sim: Sim, client: OxideClient) -> None:
    disk = await client.create_disk("sel-att", size=GIB)
    inst = await client.get_instance("instance-1")
    await client.stop_instance(inst.id)
    await client.wait_instance(inst.id, {"stopped"})
    await client.attach_disk(inst.id, disk.id)
    await client.detach_disk(inst.id, disk.id)
    assert _queries(sim, "POST", "/v1/instances/{instance}/stop") == [{}]
    assert _queries(sim, "POST", "/v1/instances/{instance}/disks/attach") == [{}]
    assert _queries(sim, "POST", "/v1/instances/{instance}/disks/detach") == [{}]


def test_is_uuid() -> None:
    value = uuid.uuid4()
    assert is_uuid(value)
    assert is_uuid(str(value))
    assert is_uuid(str(value).upper())
    assert not is_uuid("disk-1")
    assert not is_uuid(str(value).replace("-", ""))  # only the hyphenated form is an id


@pytest.mark.parametrize("bad", ["", ".", "..", "has space", "tab\there"])
async def test_impossible_selectors_never_reach_the_wire(
    sim: Sim, client: OxideClient, bad: str
) -> None:
    with pytest.raises(api_errors.OxideInvalidRequest):
        await client.get_disk(bad)
    assert sim.hits("GET /v1/disks/{disk}") == 0


async def test_names_are_percent_encoded_as_one_segment(sim: Sim, client: OxideClient) -> None:
    # Not a valid Oxide name; the server must see it whole (and refuse it), not as a path.
    with pytest.raises(api_errors.OxideInvalidRequest):
        await client.get_disk("a/b?c")
    assert sim.hits("GET /v1/disks/{disk}") == 1


async def test_pagination_walks_every_page_and_stops_on_the_empty_one(
    sim: Sim, client_factory: ClientFactory
) -> None:
    client, rec = client_factory(sim, page_size=2)
    # Two boot disks exist already; four more make six, an exact multiple of the page size.
    for i in range(4):
        await client.create_disk(f"page-{i}", size=GIB)
    names = [d.name async for d in client.list_disks()]
    assert len(names) == len(set(names)) == 6
    assert names == sorted(names)  # the server's default order survives the walk
    # Three full pages, each with next_page, then an empty page ends the walk.
    assert rec.count("GET", "/v1/disks") == 4
    pages = _queries(sim, "GET", "/v1/disks")
    assert pages[0] == {"project": PROJECT, "limit": "2"}
    assert all("page_token" in q and q["limit"] == "2" for q in pages[1:])
    assert len({q["page_token"] for q in pages[1:]}) == 3


async def test_pagination_ends_on_a_short_page_too(sim: Sim, client_factory: ClientFactory) -> None:
    client, rec = client_factory(sim, page_size=4)
    await client.create_disk("short-0", size=GIB)
    assert len([d async for d in client.list_disks()]) == 3
    # The short page still carries next_page (dropshot does that), so one more empty page.
    assert rec.count("GET", "/v1/disks") == 2


async def test_pagination_of_empty_lists(sim: Sim, client_factory: ClientFactory) -> None:
    client, rec = client_factory(sim, page_size=1)
    assert [s async for s in client.list_snapshots()] == []
    assert rec.count("GET", "/v1/snapshots") == 1
    assert len([i async for i in client.list_instances()]) == 2
    assert rec.count("GET", "/v1/instances") == 3


async def test_pagination_retries_a_failed_page(sim: Sim, client_factory: ClientFactory) -> None:
    client, rec = client_factory(sim, page_size=1, max_attempts=10)
    sim.faults(error_rate=0.5, error_statuses=[503], seed=7, path_regex="^/v1/instances$")
    assert sorted([i.name async for i in client.list_instances()]) == ["instance-0", "instance-1"]
    failed = [a for a in rec.attempts if a.status == 503]
    assert failed, "the seed was meant to fail some page requests"
    assert rec.count("GET", "/v1/instances") == 3 + len(failed)
