"""The baseline for attach coalescing: one full power cycle per ControllerPublishVolume.

This is what a driver without a coordinator has to do on Oxide, where a disk can be attached
only to a stopped instance: stop, wait until stopped, attach, start, wait until running --
for every call. Calls for one instance are serialized, as they must be: a second caller's stop
or start in the middle of the first one's cycle would fail or, worse, boot the instance between
another caller's stop and attach. It uses the same Oxide client, with the same polling, as the
plugin, so the difference measured is the coordination and nothing else.
"""

from __future__ import annotations

import asyncio

from oxide_csi.oxide import OxideClient


class NaiveAttacher:
    """Attach with a power cycle per call; ``cycles`` counts them."""

    def __init__(self, client: OxideClient) -> None:
        self._client = client
        self._locks: dict[str, asyncio.Lock] = {}
        self.cycles = 0

    async def publish(self, disk_id: str, instance_id: str, *, deadline: float) -> None:
        client = self._client
        async with self._locks.setdefault(instance_id, asyncio.Lock()):
            await client.stop_instance(instance_id, deadline=deadline)
            await client.wait_instance(instance_id, {"stopped"}, deadline=deadline)
            disk = await client.attach_disk(instance_id, disk_id, deadline=deadline)
            if disk.state != "attached":
                await client.wait_disk(disk_id, {"attached"}, deadline=deadline)
            await client.start_instance(instance_id, deadline=deadline)
            await client.wait_instance(instance_id, {"running"}, deadline=deadline)
            self.cycles += 1
