"""Dev mode's other guests: the simulated instances this machine does not play answer too.

``oxide-csi dev`` simulates several instances but runs one node plugin, instance-0's. So that
a cycle of any instance can be a guest power-off (benchmarks with several instances count them
apart from hard stops), each other instance gets what its node plugin would keep: a heartbeat
with a boot id that is new at every start of that instance, and a handler whose power-off is
the simulator's guest hook (they have no devices here, so there is nothing to flush). They run
the node's own agent (``oxide_csi.poweroff.agent``) on the file channel, in one thread with an
event loop of its own, beside the plugin's; the same switches turn them off.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from oxide_csi.poweroff.agent import GuestAgent, read_boot_id
from oxide_csi.poweroff.files import FileChannel


class GuestBoots:
    """Simulator instance hook: a new boot id for an instance at each of its starts."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def path(self, name: str) -> Path:
        return self.directory / name

    def boot(self, name: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = self.path(name).with_suffix(".tmp")
        tmp.write_text(f"{uuid.uuid4()}\n")
        tmp.replace(self.path(name))

    def before_running(self, instance: Mapping[str, Any], disks: object) -> None:
        self.boot(str(instance["name"]))

    def after_stopped(self, instance: Mapping[str, Any], disks: object) -> None:
        return None


class OtherGuests:
    """Agents for ``instances`` (name -> id), started and stopped from the main thread."""

    def __init__(
        self,
        channel_dir: Path,
        boots: GuestBoots,
        instances: Mapping[str, str],
        power_off: Callable[[str], None],
        *,
        heartbeat: bool,
        handler: bool,
    ) -> None:
        self._dir = channel_dir
        self._boots = boots
        self._instances = dict(instances)
        self._power_off = power_off
        self._heartbeat = heartbeat
        self._handler = handler
        self._loop: asyncio.AbstractEventLoop | None = None
        self._done: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    def start(self) -> None:
        for name in self._instances:
            if not self._boots.path(name).exists():
                self._boots.boot(name)  # running since before this start: a boot of its own
        self._thread = threading.Thread(target=self._run, name="dev-guests", daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def stop(self) -> None:
        if self._loop is not None and self._done is not None:
            self._loop.call_soon_threadsafe(self._done.set)
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop, self._done = asyncio.get_running_loop(), asyncio.Event()
        closers = [self._agent(name, iid).start() for name, iid in self._instances.items()]
        self._ready.set()
        await self._done.wait()
        for close in closers:
            await close()

    def _agent(self, name: str, instance_id: str) -> GuestAgent:
        path = self._boots.path(name)
        return GuestAgent(
            FileChannel(self._dir),
            instance_id=instance_id,
            boot_id=lambda: read_boot_id(path),
            power_off=(lambda: self._power_off(name)) if self._handler else None,
            heartbeat=self._heartbeat,
        )
