"""A cancelled earlier create whose POST lands between a retry's look-up and the retry's POST.

The race is made deterministic by wrapping the controller's Oxide client: just before the
retry's own POST, the earlier attempt's POST is sent (through the real client, over HTTP to
the simulator), so Oxide refuses the retry's POST with 400 ``ObjectAlreadyExists``. The same
request must then succeed with the object the earlier attempt made; a different one is
ALREADY_EXISTS.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest

from oxide_csi.controller import naming
from oxide_csi.csi_v1 import csi_pb2
from oxide_csi.oxide import api_errors
from tests.controller.conftest import Rig
from tests.rpc import code_of

Create = Callable[..., Awaitable[Any]]


def race_once(rig: Rig, monkeypatch: pytest.MonkeyPatch, method: str, **earlier: Any) -> list[Any]:
    """Make the next ``method`` call lose a race against an earlier attempt's POST.

    ``earlier`` overrides fields of the earlier POST (to make it a different request). Returns
    a list that receives what the earlier POST made, then the refusal our POST got.
    """
    real: Create = getattr(rig.client, method)
    seen: list[Any] = []

    async def racing(name: str, **kwargs: Any) -> Any:
        if not seen:
            seen.append(await real(name, **{**kwargs, **earlier}))
            try:
                return await real(name, **kwargs)
            except api_errors.OxideAlreadyExists as exc:
                seen.append(exc)
                raise
        return await real(name, **kwargs)

    monkeypatch.setattr(rig.client, method, racing)
    return seen


async def _snapshot(rig: Rig, name: str, volume_id: str) -> csi_pb2.CreateSnapshotResponse:
    req = csi_pb2.CreateSnapshotRequest(name=name, source_volume_id=volume_id)
    resp: csi_pb2.CreateSnapshotResponse = await rig.stub.CreateSnapshot(req, timeout=30)
    return resp


async def test_snapshot_made_by_an_earlier_attempt_in_the_race_is_returned(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    vol = (await rig.create("pvc-race-snap")).volume
    seen = race_once(rig, monkeypatch, "create_snapshot")
    snap = (await _snapshot(rig, "snap-race", vol.volume_id)).snapshot
    earlier, refusal = seen
    assert isinstance(refusal, api_errors.OxideAlreadyExists)
    assert snap.snapshot_id == earlier.id
    assert snap.source_volume_id == vol.volume_id


async def test_snapshot_of_another_volume_in_the_race_is_already_exists(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    vol = (await rig.create("pvc-race-snap-a")).volume
    other = (await rig.create("pvc-race-snap-b")).volume
    seen = race_once(rig, monkeypatch, "create_snapshot", disk=other.volume_id)
    clash = _snapshot(rig, "snap-race-clash", vol.volume_id)
    assert await code_of(clash) == grpc.StatusCode.ALREADY_EXISTS
    assert isinstance(seen[1], api_errors.OxideAlreadyExists)


async def test_volume_made_by_an_earlier_attempt_in_the_race_is_returned(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = race_once(rig, monkeypatch, "create_disk")
    vol = (await rig.create("pvc-race-vol")).volume
    earlier, refusal = seen
    assert isinstance(refusal, api_errors.OxideAlreadyExists)
    assert vol.volume_id == earlier.id
    disk = await rig.client.get_disk(naming.disk_name("pvc-race-vol"))
    assert disk.id == earlier.id
    assert disk.state == "detached"  # waited for, as after its own create


async def test_different_volume_in_the_race_is_already_exists(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = race_once(rig, monkeypatch, "create_disk", block_size=512)
    assert await code_of(rig.create("pvc-race-vol-clash")) == grpc.StatusCode.ALREADY_EXISTS
    assert isinstance(seen[1], api_errors.OxideAlreadyExists)


async def test_clone_whose_temporary_snapshot_lost_the_race_succeeds(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = (await rig.create("pvc-race-clone-src")).volume
    source = csi_pb2.VolumeContentSource(
        volume=csi_pb2.VolumeContentSource.VolumeSource(volume_id=src.volume_id)
    )
    seen = race_once(rig, monkeypatch, "create_snapshot")
    clone = (await rig.create("pvc-race-clone", volume_content_source=source)).volume
    assert isinstance(seen[1], api_errors.OxideAlreadyExists)
    assert clone.content_source.volume.volume_id == src.volume_id
    assert [s async for s in rig.client.list_snapshots()] == []  # the temporary one is gone
