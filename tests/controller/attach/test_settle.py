"""Disks that pass through ``attaching``/``detaching``: the instance boots only once they settled.

With ``attach_seconds`` the simulator keeps a disk ``attaching`` for a while after the attach
call returned, as a rack may. An instance hook sees the disks at the moment the instance
starts booting; every one we attached must already be ``attached`` then, or the guest could
come up without it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from oxide_csi.controller.attach import AttachCoordinator, StartPolicy
from oxide_csi.oxide import OxideClient
from oxide_sim import SimConfig, SimulatorServer
from tests.controller.attach.conftest import GIB, TOKEN, client_config, soon
from tests.controller.attach.memory_store import MemoryAttachRecordStore

INSTANCE = "instance-0"


class BootWitness:
    """Remembers the disk states each boot of the instance saw."""

    def __init__(self) -> None:
        self.boots: list[dict[str, str]] = []

    def before_running(self, instance: dict[str, Any], disks: list[dict[str, Any]]) -> None:
        if instance["name"] == INSTANCE:
            self.boots.append({d["id"]: d["state"]["state"] for d in disks})

    def after_stopped(self, instance: dict[str, Any], disks: list[dict[str, Any]]) -> None:
        pass


async def test_instance_boots_only_after_disks_settled(tmp_path: Path) -> None:
    cfg = SimConfig(token=TOKEN, instances=1, attach_seconds=0.2, state_dir=tmp_path)
    witness = BootWitness()
    with SimulatorServer(cfg) as sim:
        sim.add_instance_hook(witness)
        async with OxideClient(client_config(sim.url)) as client:
            coord = AttachCoordinator(
                client,
                record=MemoryAttachRecordStore(),
                batch_window=0.05,
                start_policy=StartPolicy(initial=0.02, maximum=0.1),
            )
            await coord.start()
            try:
                disks = await asyncio.gather(
                    *(client.create_disk(f"settle-{i}", size=GIB) for i in range(2))
                )
                await asyncio.gather(
                    *(coord.attach(d.id, INSTANCE, deadline=soon()) for d in disks)
                )
                await coord.detach(disks[0].id, INSTANCE, deadline=soon())
            finally:
                await coord.close()

    first, second = witness.boots
    assert first[disks[0].id] == first[disks[1].id] == "attached"
    assert disks[0].id not in second  # detached (not "detaching") before the second boot
    assert second[disks[1].id] == "attached"
