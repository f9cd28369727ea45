"""A cheap, cached answer to "is the backend this plugin depends on reachable?".

Probe is called often (the livenessprobe sidecar, every few seconds, on every replica), so the
real check runs at most once per ``ttl`` and concurrent callers share one check in flight. A
check that raises or times out counts as not ready; it never propagates as an error, because a
slow Oxide API is a state to report, not a failure of the Probe call itself.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger("oxide_csi.readiness")

Check = Callable[[], Awaitable[object]]


class CachedReadiness:
    """Runs ``check`` at most once per ``ttl`` seconds; each run is bounded by ``timeout``."""

    def __init__(self, check: Check | None, ttl: float = 10.0, timeout: float = 5.0) -> None:
        self._check = check
        self._ttl = ttl
        self._timeout = timeout
        self._lock = asyncio.Lock()
        self._value: bool | None = None
        self._at = 0.0

    async def ready(self) -> bool:
        if self._check is None:
            return True
        if self._value is not None and time.monotonic() - self._at < self._ttl:
            return self._value
        async with self._lock:
            if self._value is not None and time.monotonic() - self._at < self._ttl:
                return self._value
            self._value = await self._run()
            self._at = time.monotonic()
            return self._value

    async def _run(self) -> bool:
        assert self._check is not None
        try:
            await asyncio.wait_for(self._check(), self._timeout)
        except Exception as exc:
            log.warning("backend not ready", error=f"{type(exc).__name__}: {exc}")
            return False
        return True
