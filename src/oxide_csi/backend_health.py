"""Is the Oxide API usable? Watched in the background, reported -- never a reason to restart.

Why not in liveness: Kubernetes restarts a container whose liveness fails, and the livenessprobe
sidecar fails whenever CSI Probe answers ``ready: false``. An unreachable rack, a rack being
updated or an expired token would then restart the controller again and again, and every
restart abandons the power cycles in flight (their instances wait for recovery in the next
process). A restart cannot bring the API back. So Probe only says the process serves, and
this watcher says what is wrong with the API, where an operator looks:

* logs: one line when the state changes (error with the reason and what to do, info when it
  is back), not one per check;
* metrics: ``oxide_csi_oxide_api_up`` and ``oxide_csi_oxide_api_problem{reason}``;
* readiness: the gRPC health service ``oxide`` on the CSI socket is NOT_SERVING meanwhile.

Reasons are a small fixed set, so they can be metric labels.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import structlog
from grpc_health.v1 import health, health_pb2

from oxide_csi.oxide import api_errors

log = structlog.get_logger("oxide_csi.backend_health")

Check = Callable[[], Awaitable[object]]
#: The gRPC health service name that carries the Oxide API's state.
HEALTH_SERVICE = "oxide"

#: reason -> what the operator should do about it.
HINTS = {
    "unauthorized": "the Oxide token is invalid or expired: renew it in the controller's Secret",
    "forbidden": "the token's user lacks rights on the project: grant it the collaborator role",
    "project_not_found": "the configured project does not exist (or the token cannot see it)",
    "unreachable": "no answer from the Oxide API: check OXIDE_HOST, the network, the rack",
    "server_error": "the Oxide API answers with errors (an update in progress?); retrying",
    "error": "unexpected failure talking to the Oxide API; see the error",
}
REASONS = tuple(HINTS)


def classify(exc: BaseException) -> str:
    """The reason (one of :data:`REASONS`) for a failed check."""
    if isinstance(exc, api_errors.OxideUnauthorized):
        return "unauthorized"
    if isinstance(exc, api_errors.OxideForbidden):
        return "forbidden"
    if isinstance(exc, api_errors.OxideNotFound):
        return "project_not_found"
    if isinstance(
        exc, api_errors.OxideTimeout | api_errors.OxideUnavailable | TimeoutError | OSError
    ):
        return "unreachable"
    if isinstance(exc, api_errors.OxideServerError | api_errors.OxideRateLimited):
        return "server_error"
    return "error"


class BackendHealth:
    """Checks the API every ``interval`` seconds (each check bounded by ``timeout``).

    ``reason`` is "" while the last check passed, else one of :data:`REASONS`; ``ok`` is None
    before the first check. ``health_servicer``, when given, gets :data:`HEALTH_SERVICE`.
    """

    def __init__(
        self,
        check: Check,
        *,
        interval: float = 15.0,
        timeout: float = 10.0,
        health_servicer: health.aio.HealthServicer | None = None,
    ) -> None:
        self._check = check
        self._interval = interval
        self._timeout = timeout
        self._health = health_servicer
        self.ok: bool | None = None
        self.reason = ""
        self._task: asyncio.Task[None] | None = None

    def start(self) -> Callable[[], Awaitable[None]]:
        """Watch in the background; returns the closer."""
        self._task = asyncio.create_task(self._run(), name="oxide-api-health")

        async def close() -> None:
            if self._task is not None:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task

        return close

    async def _run(self) -> None:
        while True:
            await self.check_once()
            await asyncio.sleep(self._interval)

    async def check_once(self) -> None:
        try:
            await asyncio.wait_for(self._check(), self._timeout)
        except Exception as exc:
            await self._set(classify(exc), f"{type(exc).__name__}: {exc}")
        else:
            await self._set("", "")

    async def _set(self, reason: str, error: str) -> None:
        changed = self.ok is None or reason != self.reason
        self.ok, self.reason = not reason, reason
        if not changed:
            return
        if reason:
            log.error("Oxide API not usable", reason=reason, hint=HINTS[reason], error=error)
        else:
            log.info("Oxide API usable")
        if self._health is not None:
            status = health_pb2.HealthCheckResponse
            await self._health.set(HEALTH_SERVICE, status.NOT_SERVING if reason else status.SERVING)
