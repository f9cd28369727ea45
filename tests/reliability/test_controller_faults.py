"""Many concurrent volume lifecycles through the controller while the simulated Oxide misbehaves.

The simulator injects 5xx, 429, added latency and dropped connections on every /v1 endpoint,
half of them *after* the request took effect (the client cannot know whether it happened). A
CO-like driver repeats each RPC on the codes a CO retries, as the external-provisioner and
external-attacher do. Every call must end in success or a retryable code; once the faults stop,
everything must converge; and afterwards the rack must hold no orphaned disk or snapshot, no
disk attached, and no instance left stopped. The test prints what it tried and found.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc
import httpx
import pytest

from oxide_csi.app import controller_parts
from oxide_csi.config import ControllerSettings
from oxide_csi.controller.attach import AttachCoordinator
from oxide_csi.controller.attach.released import LedgerView
from oxide_csi.controller.oxide_failures import translate_escaped
from oxide_csi.csi_v1 import csi_pb2, csi_pb2_grpc
from oxide_csi.oxide import OxideClient, OxideConfig
from oxide_sim import FaultConfig, SimConfig, SimulatorServer
from tests.controller.conftest import mount_cap
from tests.reliability.report import record
from tests.server.inprocess import serving

TOKEN = "oxide-token-faulttests0123456789abcdef"
LIFECYCLES = 12
INSTANCES = 3
T = TypeVar("T")

#: Codes after which a CO simply tries again (and must eventually succeed).
RETRYABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.ABORTED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)

FAULTS = FaultConfig(
    error_rate=0.2,
    error_statuses=[500, 502, 503, 504],
    rate_limit_rate=0.05,
    latency_ms=40,
    latency_rate=0.2,
    drop_rate=0.08,
    phase="random",
    seed=20261123,
)


@dataclass
class Tally:
    calls: int = 0
    retries: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    oxide_attempts: int = 0
    oxide_retries: int = 0

    def on_request(self, method: str, template: str, status: int | None, s: float, n: int) -> None:
        self.oxide_attempts += 1
        if n > 1:
            self.oxide_retries += 1


@dataclass
class FaultRig:
    sim: SimulatorServer
    stub: csi_pb2_grpc.ControllerAsyncStub
    client: OxideClient
    hooks: httpx.Client
    tally: Tally
    coordinator: AttachCoordinator

    async def until_ok(self, rpc: Callable[[], Awaitable[T]], what: str) -> T:
        """Call like a CO: retry retryable codes with a short backoff; anything else fails."""
        for attempt in range(200):
            self.tally.calls += 1
            try:
                return await rpc()
            except grpc.aio.AioRpcError as exc:
                self.tally.codes[exc.code().name] += 1
                assert exc.code() in RETRYABLE, f"{what}: {exc.code().name} {exc.details()}"
                self.tally.retries += 1
                await asyncio.sleep(min(0.5, 0.02 * (attempt + 1)))
        raise AssertionError(f"{what} never succeeded")


@pytest.fixture
async def fault_rig(tmp_path: Path, short_tmp: Path) -> AsyncIterator[FaultRig]:
    cfg = SimConfig(
        token=TOKEN,
        instances=INSTANCES,
        stop_seconds=0.05,
        start_seconds=0.05,
        state_dir=tmp_path / "sim",
        faults=FAULTS,
    )
    tally = Tally()
    with SimulatorServer(cfg) as sim:
        client_cfg = OxideConfig(
            host=sim.url,
            token=TOKEN,
            project="default",
            backoff_base=0.01,
            backoff_max=0.1,
            poll_initial=0.02,
            poll_max=0.1,
            request_timeout=5.0,
        )
        async with OxideClient(client_cfg, on_request=tally.on_request) as client:
            settings = ControllerSettings(state_dir=tmp_path / "ctl", batch_window=0.05)
            servicer, coordinator = controller_parts(client, settings)
            await coordinator.start()

            def register(server: grpc.aio.Server) -> None:
                csi_pb2_grpc.add_ControllerServicer_to_server(servicer, server)

            try:
                async with serving(
                    short_tmp / "faults.sock", [register], translate_escaped
                ) as channel:
                    with httpx.Client(base_url=sim.url, timeout=10) as hooks:
                        stub = csi_pb2_grpc.ControllerStub(channel)
                        yield FaultRig(sim, stub, client, hooks, tally, coordinator)
            finally:
                await coordinator.close()


async def _lifecycle(rig: FaultRig, i: int, node_ids: list[str], created: set[str]) -> None:
    stub = rig.stub
    name = f"pvc-fault-{i:02d}"
    create = csi_pb2.CreateVolumeRequest(name=name, volume_capabilities=[mount_cap()])
    resp = await rig.until_ok(lambda: stub.CreateVolume(create, timeout=20), f"create {name}")
    vol_id = resp.volume.volume_id
    created.add(vol_id)
    node = node_ids[i % len(node_ids)]
    publish = csi_pb2.ControllerPublishVolumeRequest(
        volume_id=vol_id, node_id=node, volume_capability=mount_cap()
    )
    await rig.until_ok(lambda: stub.ControllerPublishVolume(publish, timeout=20), "publish")
    get = csi_pb2.ControllerGetVolumeRequest(volume_id=vol_id)
    seen = await rig.until_ok(lambda: stub.ControllerGetVolume(get, timeout=20), "get")
    assert node in seen.status.published_node_ids  # reported created: really there
    if i % 2 == 0:
        snap_req = csi_pb2.CreateSnapshotRequest(name=f"snap-{name}", source_volume_id=vol_id)
        snap = await rig.until_ok(lambda: stub.CreateSnapshot(snap_req, timeout=20), "snapshot")
        delete_snap = csi_pb2.DeleteSnapshotRequest(snapshot_id=snap.snapshot.snapshot_id)
        await rig.until_ok(lambda: stub.DeleteSnapshot(delete_snap, timeout=20), "del snap")
    unpublish = csi_pb2.ControllerUnpublishVolumeRequest(volume_id=vol_id, node_id=node)
    await rig.until_ok(lambda: stub.ControllerUnpublishVolume(unpublish, timeout=20), "unpub")
    delete = csi_pb2.DeleteVolumeRequest(volume_id=vol_id)
    await rig.until_ok(lambda: stub.DeleteVolume(delete, timeout=20), f"delete {name}")


async def test_lifecycles_survive_faults_and_leave_nothing_behind(fault_rig: FaultRig) -> None:
    rig = fault_rig
    instances = [i async for i in rig.client.list_instances()]
    node_ids = [i.id for i in sorted(instances, key=lambda i: i.name)]
    created: set[str] = set()
    order = list(range(LIFECYCLES))
    random.Random(7).shuffle(order)
    await asyncio.gather(*(_lifecycle(rig, i, node_ids, created) for i in order))

    stats: dict[str, Any] = rig.hooks.get("/sim/stats").json()
    injected = stats["faults_injected"]
    rig.hooks.put("/sim/faults", json=FaultConfig().to_json()).raise_for_status()
    # Deferred detach (the default): the last claims of each instance wait, released or owed,
    # for its next cycle; the operator's release-instance is that cycle.
    for instance_id in node_ids:
        await rig.coordinator.release_instance(instance_id, deadline=time.monotonic() + 60)
    assert await rig.coordinator.view() == LedgerView()

    # Converged: the rack holds nothing of ours, nothing attached, every instance running.
    disks = [d async for d in rig.client.list_disks()]
    orphans = [d.name for d in disks if d.name.startswith("csi-")]
    attached = [d.name for d in disks if d.state != "attached" and d.instance_id]
    snapshots = [s.name async for s in rig.client.list_snapshots()]
    instances = [i async for i in rig.client.list_instances()]
    stopped = [i.name for i in instances if i.run_state != "running"]
    boot_ok = all(d.state == "attached" for d in disks if not d.name.startswith("csi-"))
    record(
        f"fault run: {LIFECYCLES} lifecycles, {rig.tally.calls} RPCs "
        f"({rig.tally.retries} retried by the CO: {dict(rig.tally.codes)}), "
        f"{rig.tally.oxide_attempts} Oxide requests ({rig.tally.oxide_retries} client retries), "
        f"faults injected {injected}; leaks: {len(orphans)} disks, {len(snapshots)} snapshots, "
        f"{len(attached)} stray attachments, {len(stopped)} instances stopped"
    )
    assert len(created) == LIFECYCLES
    assert orphans == [] and snapshots == [] and attached == [] and stopped == []
    assert boot_ok
    assert sum(injected.values()) > 0 if isinstance(injected, dict) else injected > 0
