"""The sweep of abandoned clones' temporary snapshots, against the simulated rack."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from oxide_csi.controller import naming
from oxide_csi.controller.clone_sweep import sweep_clone_snapshots, sweep_periodically
from oxide_csi.controller.metadata import clone_description
from oxide_csi.csi_v1 import csi_pb2
from tests.controller.conftest import GIB, Rig


async def _names(rig: Rig) -> set[str]:
    return {s.name async for s in rig.client.list_snapshots()}


async def _clone_snapshot(rig: Rig, target: str, disk_id: str) -> str:
    """A temporary snapshot as a clone into ``target`` leaves it: our name, our marker."""
    name = naming.clone_snapshot_name(target)
    await rig.client.create_snapshot(
        name, disk=disk_id, description=clone_description(disk_id, target)
    )
    await rig.client.wait_snapshot(name)
    return name


async def test_only_old_clone_snapshots_are_swept(rig: Rig) -> None:
    source = await rig.client.create_disk("csi-sweep-source", size=GIB)
    abandoned = await _clone_snapshot(rig, "pvc-abandoned", source.id)
    user = "clone-of-my-database"  # a user's snapshot that merely starts like ours
    # A user's snapshot named exactly like a clone's, without our marker: never ours.
    lookalike = naming.clone_snapshot_name("their-volume")
    csi = naming.snapshot_name("snapshot-1")
    for name in (user, lookalike, csi):
        await rig.client.create_snapshot(name, disk=source.id, description="my backup")
        await rig.client.wait_snapshot(name)

    # Fresh: nothing is old enough yet.
    assert await sweep_clone_snapshots(rig.client) == []
    assert {abandoned, user, lookalike, csi} <= await _names(rig)

    # An hour and a minute later, only the clone's temporary snapshot goes.
    later = datetime.now(UTC) + timedelta(hours=1, minutes=1)
    assert await sweep_clone_snapshots(rig.client, now=later) == [abandoned]
    names = await _names(rig)
    assert abandoned not in names
    assert {user, lookalike, csi} <= names


async def test_a_swept_clone_is_retried_with_a_new_snapshot(rig: Rig) -> None:
    """Even a clone whose snapshot was swept mid-way (a very slow one) ends well."""
    src = (await rig.create("pvc-sweep-src", size=GIB)).volume
    stale = await _clone_snapshot(rig, "pvc-sweep-clone", src.volume_id)  # a first attempt's
    later = datetime.now(UTC) + timedelta(hours=2)
    assert await sweep_clone_snapshots(rig.client, now=later) == [stale]

    source = csi_pb2.VolumeContentSource(
        volume=csi_pb2.VolumeContentSource.VolumeSource(volume_id=src.volume_id)
    )
    clone = (await rig.create("pvc-sweep-clone", volume_content_source=source)).volume
    assert clone.content_source.volume.volume_id == src.volume_id
    assert stale not in await _names(rig)  # the retry's own snapshot was cleaned up too


async def test_the_background_sweep_runs_at_once_and_again(rig: Rig) -> None:
    source = await rig.client.create_disk("csi-sweep-bg", size=GIB)
    first = await _clone_snapshot(rig, "pvc-bg-1", source.id)
    close = sweep_periodically(rig.client, interval=0.05, max_age=timedelta(0))
    try:
        async with asyncio.timeout(20):
            while first in await _names(rig):
                await asyncio.sleep(0.02)
            second = await _clone_snapshot(rig, "pvc-bg-2", source.id)  # after the first sweep
            while second in await _names(rig):
                await asyncio.sleep(0.02)
    finally:
        await close()
