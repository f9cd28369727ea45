"""Kernel uevents for block devices: what wakes a NodeStage waiting for its disk.

Why: a disk hot-plugged into a running instance (a hot-plug rack, ``oxide-csi dev --hotplug``)
may reach the node after the CO already called NodeStageVolume. Polling sysfs in a tight loop
would cost every waiting stage CPU on a shared node; backing off would make the stage late. The
kernel announces every block device it adds or changes on its uevent netlink socket, so the
wait sleeps until one arrives and then scans sysfs again. The scan stays the only source of
truth: an event only says "look now" (the event's device is not trusted for anything), and a
slow safety rescan covers events the socket dropped.

pyudev's :class:`Monitor` reads that socket (libudev underneath). There is no udev daemon in the
node container, so it listens to the kernel's own group (``source='kernel'``), not to udev's
re-broadcast. pyudev (and libudev with it) is imported the first time a wait needs it -- never
at start, so a node that never waits for a device never loads it.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog

log = structlog.get_logger(__name__)

#: Actions after which a block device may now carry the identity we wait for.
_WAKING_ACTIONS = frozenset({"add", "change", "bind", "online"})


class BlockDeviceEvents:
    """A counter of block-device uevents that waiters can sleep on.

    ``listen()`` opens the monitor on the running event loop (once); afterwards ``seq`` moves
    with every block device added or changed. A waiter reads ``seq``, scans sysfs, and if the
    scan found nothing calls ``wait_beyond(seq, timeout)``, which returns at once if an event
    came in between -- so no event between the scan and the sleep is ever missed.
    """

    def __init__(self) -> None:
        self._seq = 0
        self._monitor: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._arrived = asyncio.Event()
        self._unavailable = False

    @property
    def seq(self) -> int:
        return self._seq

    @property
    def listening(self) -> bool:
        return self._monitor is not None

    def listen(self) -> bool:
        """Start receiving uevents on the running loop; False if this host cannot (then the
        caller falls back to rescanning with backoff)."""
        loop = asyncio.get_running_loop()
        if self._unavailable:
            return False
        if self._monitor is not None and self._loop is loop and not loop.is_closed():
            return True
        try:
            if self._monitor is None:
                self._monitor = _open_monitor()
            loop.add_reader(self._monitor.fileno(), self._drain)
        except (ImportError, OSError) as exc:
            self._unavailable = True
            log.warning(
                "no kernel uevents (pyudev/libudev); waiting for devices by rescanning",
                error=str(exc),
            )
            return False
        self._loop = loop
        self._arrived = asyncio.Event()
        return True

    async def wait_beyond(self, seq: int, seconds: float) -> None:
        """Return once an event newer than ``seq`` arrived, or after ``seconds``."""
        if self._seq != seq:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._arrived.wait(), seconds)

    def close(self) -> None:
        if self._monitor is None:
            return
        if self._loop is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._monitor.fileno())
        self._monitor = None
        self._loop = None

    def _drain(self) -> None:
        """Readable: take every queued event; wake the waiters if one was a block device's."""
        woke = False
        while True:
            try:
                device = self._monitor.poll(timeout=0)
            except OSError as exc:  # e.g. ENOBUFS: events were lost; a rescan finds the truth
                log.debug("uevent socket overflowed", error=str(exc))
                woke = True
                continue
            if device is None:
                break
            if device.action in _WAKING_ACTIONS:
                woke = True
        if woke:
            self._seq += 1
            arrived, self._arrived = self._arrived, asyncio.Event()
            arrived.set()


def _open_monitor() -> Any:
    import pyudev  # here, not at the top: see the module's docstring

    monitor = pyudev.Monitor.from_netlink(pyudev.Context(), source="kernel")
    monitor.filter_by("block")
    monitor.start()
    return monitor
