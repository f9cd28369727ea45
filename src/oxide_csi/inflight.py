"""One operation per key at a time, in this process.

Kubernetes sidecars retry aggressively and may send the same CreateVolume twice before the first
returns. Serialising calls per key (the CSI name, the volume id) lets the second one start only
after the first finished, and then find its result by looking the resource up -- so a duplicate
never creates a second disk and the code stays free of ad-hoc bookkeeping.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class KeyedLocks:
    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}
        self._users: dict[str, int] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[key] -= 1
            if self._users[key] == 0:  # no waiter left: forget the lock
                del self._users[key]
                del self._locks[key]
