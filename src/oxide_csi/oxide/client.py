"""``OxideClient``: the async client of the Oxide API the controller uses.

The endpoint methods live in ``disks.py`` and ``instances.py``; this module adds identity and
project checks, capacity, the waiters and the lifecycle. Every method takes ``deadline``, an
absolute ``time.monotonic()`` value bounding all attempts of the call; the CSI layer derives it
from the gRPC deadline so that no Oxide call outlives the RPC that needed it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from types import TracebackType

import httpx

from oxide_csi.oxide.client_config import OxideConfig
from oxide_csi.oxide.disks import DiskOps
from oxide_csi.oxide.instances import InstanceOps
from oxide_csi.oxide.models import Disk, Instance, Project, Snapshot, Utilization
from oxide_csi.oxide.polling import TransitionMemory
from oxide_csi.oxide.selectors import NameOrId, path_segment
from oxide_csi.oxide.transport import RequestObserver, Transport
from oxide_csi.oxide.waiters import (
    DISK_FAIL_STATES,
    INSTANCE_FAIL_STATES,
    SNAPSHOT_FAIL_STATES,
    wait_for_state,
)


class OxideClient(DiskOps, InstanceOps):
    """One rack, one project, one token. Use as ``async with OxideClient(cfg) as c:``.

    ``on_request`` is called after every HTTP attempt with (method, path template, status or
    None, seconds, attempt number) -- the hook for request metrics. ``http_transport`` and
    ``rng`` exist for tests (an in-memory transport, a seeded jitter).
    """

    def __init__(
        self,
        cfg: OxideConfig,
        *,
        on_request: RequestObserver | None = None,
        http_transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self._cfg = cfg
        self._t = Transport(cfg, on_request=on_request, http_transport=http_transport, rng=rng)
        self._transitions = TransitionMemory()

    @property
    def config(self) -> OxideConfig:
        return self._cfg

    async def __aenter__(self) -> OxideClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close pooled connections; the client is unusable afterwards."""
        await self._t.aclose()

    def __repr__(self) -> str:
        return f"OxideClient(host={self._cfg.host!r}, project={self._cfg.project!r})"

    # ---- project, capacity -------------------------------------------------------------

    async def get_project(self, *, deadline: float | None = None) -> Project:
        """The configured project; an OxideNotFound here means the configuration is wrong."""
        template = "/v1/projects/{project}"
        path = template.format(project=path_segment(self._cfg.project))
        return Project.from_api(await self._t.request("GET", template, path, deadline=deadline))

    async def utilization(self, *, deadline: float | None = None) -> Utilization:
        """The silo's storage capacity and use (informational; the plugin offers no GetCapacity,
        since silo-wide figures say nothing true about whether one more disk fits)."""
        raw = await self._t.request("GET", "/v1/utilization", "/v1/utilization", deadline=deadline)
        return Utilization.from_api(raw)

    # ---- waiters -------------------------------------------------------------------------

    def _wait_deadline(self, deadline: float | None) -> float:
        return deadline if deadline is not None else time.monotonic() + self._cfg.wait_timeout

    async def wait_disk(
        self,
        disk: NameOrId,
        want: Collection[str] = frozenset({"detached"}),
        *,
        deadline: float | None = None,
        fail: Collection[str] = DISK_FAIL_STATES,
    ) -> Disk:
        """Poll until the disk's state is in ``want``; ``faulted``/``destroyed`` end the wait."""

        async def fetch(dl: float) -> Disk:
            return await self.get_disk(disk, deadline=dl)

        return await wait_for_state(
            fetch,
            lambda d: d.state,
            want=want,
            fail=fail,
            deadline=self._wait_deadline(deadline),
            kind="disk",
            name=str(disk),
            polling=self._cfg.polling,
            memory=self._transitions,
        )

    async def wait_instance(
        self,
        instance: NameOrId,
        want: Collection[str],
        *,
        deadline: float | None = None,
        fail: Collection[str] = INSTANCE_FAIL_STATES,
    ) -> Instance:
        """Poll until the instance's run state is in ``want``; ``destroyed`` ends the wait, and
        so does ``failed`` -- unless Oxide will restart the instance before the deadline."""

        async def fetch(dl: float) -> Instance:
            return await self.get_instance(instance, deadline=dl)

        def final(found: Instance, dl: float) -> bool:
            left = timedelta(seconds=max(0.0, dl - time.monotonic()))
            return not found.restarts_by_itself(before=datetime.now(UTC) + left)

        return await wait_for_state(
            fetch,
            lambda i: i.run_state,
            want=want,
            fail=fail,
            deadline=self._wait_deadline(deadline),
            kind="instance",
            name=str(instance),
            polling=self._cfg.polling,
            memory=self._transitions,
            final=final,
        )

    async def wait_snapshot(
        self,
        snapshot: NameOrId,
        want: Collection[str] = frozenset({"ready"}),
        *,
        deadline: float | None = None,
        fail: Collection[str] = SNAPSHOT_FAIL_STATES,
    ) -> Snapshot:
        """Poll until the snapshot's state is in ``want`` (by default ``ready``)."""

        async def fetch(dl: float) -> Snapshot:
            return await self.get_snapshot(snapshot, deadline=dl)

        return await wait_for_state(
            fetch,
            lambda s: s.state,
            want=want,
            fail=fail,
            deadline=self._wait_deadline(deadline),
            kind="snapshot",
            name=str(snapshot),
            polling=self._cfg.polling,
            memory=self._transitions,
        )
