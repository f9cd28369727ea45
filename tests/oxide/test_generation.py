"""The client finds the rack's API generation from the rack itself and speaks its shape.

Against the simulator playing each generation's releases: the probe's verdict, the DiskCreate
body actually sent (read back from the traffic log), and the features an older rack lacks
refused before anything is sent.
"""

from __future__ import annotations

from typing import Any

import pytest

from oxide_csi.oxide import OxideClient, api_errors
from oxide_csi.oxide.generation import Generation
from tests.oxide.conftest import ClientFactory, SimFactory
from tests.oxide.simkit import GIB


def _creates(sim_requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        r["request_body"]
        for r in sim_requests
        if r["method"] == "POST" and r["path"] == "/v1/disks"
    ]


@pytest.mark.parametrize(
    ("release", "expected"),
    [
        (15, Generation.UNVERSIONED),
        (17, Generation.UNVERSIONED),
        (18, Generation.VERSIONED),
        (22, Generation.VERSIONED),
    ],
)
async def test_generation_and_disk_shape_follow_the_rack(
    sim_factory: SimFactory, client_factory: ClientFactory, release: int, expected: Generation
) -> None:
    sim = sim_factory(release=release)
    client, _ = client_factory(sim)
    assert await client.generation() is expected
    assert expected.max_disks == (12 if release >= 18 else 8)
    disk = await client.create_disk("gen-disk", size=GIB)
    snap = await client.create_snapshot("gen-snap", disk=disk.id)
    await client.create_disk("gen-restored", size=GIB, snapshot_id=snap.id)
    bodies = _creates(sim.requests())
    assert len(bodies) == 2
    for body in bodies:
        if expected is Generation.VERSIONED:
            assert body["disk_backend"]["type"] == "distributed"
            assert "disk_source" not in body
        else:
            assert "disk_backend" not in body
            assert body["disk_source"]["type"] in ("blank", "snapshot")


async def test_probe_runs_once(sim_factory: SimFactory, client_factory: ClientFactory) -> None:
    sim = sim_factory(release=17)
    client, _ = client_factory(sim)
    for _ in range(3):
        assert await client.generation() is Generation.UNVERSIONED
    await client.create_disk("once", size=GIB)
    probes = [r for r in sim.requests() if r["path"] == "/v1/me"]
    assert len(probes) == 1


async def test_older_rack_refuses_read_only_and_local_unsent(
    sim_factory: SimFactory, client_factory: ClientFactory
) -> None:
    sim = sim_factory(release=17)
    client, _ = client_factory(sim)
    disk = await client.create_disk("ro-src", size=GIB)
    snap = await client.create_snapshot("ro-snap", disk=disk.id)
    with pytest.raises(api_errors.OxideInvalidRequest, match="release v18"):
        await client.create_disk("ro", size=GIB, snapshot_id=snap.id, read_only=True)
    with pytest.raises(api_errors.OxideInvalidRequest, match="release v18"):
        await client.create_disk("loc", size=GIB, local=True)
    assert len(_creates(sim.requests())) == 1


async def test_newer_rack_makes_read_only_and_local_disks(
    sim_factory: SimFactory, client_factory: ClientFactory
) -> None:
    sim = sim_factory(release=18)
    client: OxideClient = client_factory(sim)[0]
    disk = await client.create_disk("src", size=GIB)
    snap = await client.create_snapshot("src-snap", disk=disk.id)
    ro = await client.create_disk("ro", size=GIB, snapshot_id=snap.id, read_only=True)
    assert ro.read_only and ro.snapshot_id == snap.id
    local = await client.create_disk("loc", size=2 * GIB, local=True)
    assert local.disk_type == "local" and local.block_size == 4096
    with pytest.raises(api_errors.OxideInvalidRequest, match="local disk"):
        await client.create_snapshot("loc-snap", disk=local.id)
