"""A Lease per instance: who may stop, attach to, detach from and start it now.

The fence (see ``controller/attach/fence.py``) the attach worker holds for one cycle. The rules,
with D the lease duration and R < D the renew deadline (``settings.py``):

* Acquire: a Lease without holder (released) or held by us is taken at once. One held by
  another controller is taken over only after we have watched it go unrenewed for D plus the
  longest Oxide call. We time that on our own clock from the moment we first saw its current
  resourceVersion, never from the ``renewTime`` it carries: clocks of two machines disagree,
  our monotonic clock with itself does not (client-go's leader election does the same).
* Every write is conditional on the resourceVersion we read: two controllers racing for one
  Lease cannot both win.
* Hold: renew every D/6. Our lease is valid until D after the last renewal we *sent* (the
  server wrote it later, and the other controller saw it later still, so this is the
  conservative end). An Oxide change gets that end as its deadline and is refused when too
  little is left; after R without a successful renewal the hold is lost and every further
  change is refused, whether or not the renewing task has noticed yet.
* Release after the cycle: holder cleared, so the next controller need not wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from lightkube import ApiError, AsyncClient
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease

from oxide_csi import errors
from oxide_csi.controller.attach.fence import FenceLost, Hold
from oxide_csi.kube.records import MANAGED_BY, TRANSPORT_ERRORS
from oxide_csi.kube.settings import KubeSettings

log = structlog.get_logger(__name__)

PREFIX = "oxide-csi-instance-"
INSTANCE_LABEL = "csi.oxide.computer/instance"


def micro_now() -> datetime:
    """Now, for a Lease's MicroTime fields. lightkube writes a datetime whose microsecond is 0
    without a fraction (``...:05Z``), which the API server refuses in a MicroTime field; one
    microsecond later is the same instant for a lease and always carries its fraction."""
    now = datetime.now(UTC)
    return now.replace(microsecond=1) if now.microsecond == 0 else now


class LeaseUnavailable(errors.Unavailable):
    """The instance's Lease could not be had before the cycle's deadline."""


def lease_name(instance_id: str) -> str:
    return PREFIX + instance_id


@dataclass
class LeaseHold:
    """One held Lease: :class:`~oxide_csi.controller.attach.fence.Hold` for one cycle."""

    instance_id: str
    lease: Lease
    settings: KubeSettings
    #: Monotonic time at which the last successful renewal (or the acquisition) was sent.
    renewed_at: float
    clock: Callable[[], float] = time.monotonic
    lost: str = ""

    @property
    def valid_until(self) -> float:
        return self.renewed_at + self.settings.lease_seconds

    def lose(self, why: str) -> None:
        if not self.lost:
            self.lost = why
            log.warning("instance lease lost; not acting on it", instance=self.instance_id, why=why)

    def change_deadline(self, deadline: float) -> float:
        now = self.clock()
        if not self.lost and now - self.renewed_at > self.settings.renew_deadline:
            self.lose(f"not renewed for {now - self.renewed_at:.1f}s")
        if self.lost:
            raise FenceLost(
                f"lost the lease of instance {self.instance_id} ({self.lost}); whichever "
                "controller holds it next finishes the work"
            )
        left = self.valid_until - now
        if left < self.settings.min_change_seconds:
            raise FenceLost(
                f"only {left:.1f}s left on the lease of instance {self.instance_id}, too "
                "little to cover one Oxide call"
            )
        return min(deadline, self.valid_until)


class LeaseFence:
    """:class:`~oxide_csi.controller.attach.fence.Fence` on one Lease per instance."""

    shared = True  # other replicas, or an old pod beside its replacement

    def __init__(
        self,
        client: AsyncClient,
        settings: KubeSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._s = settings
        self._clock = clock

    @property
    def identity(self) -> str:
        return self._s.identity

    @contextlib.asynccontextmanager
    async def hold(self, instance_id: str, *, deadline: float) -> AsyncIterator[Hold]:
        held = await self._acquire(instance_id, deadline)
        renewer = asyncio.create_task(self._renew(held), name=f"lease-renew-{instance_id}")
        try:
            yield held
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            await self._release(held)

    # ---- acquire -------------------------------------------------------------------------

    async def _acquire(self, instance_id: str, deadline: float) -> LeaseHold:
        name = lease_name(instance_id)
        seen: tuple[str | None, float] | None = None  # (resourceVersion, first seen at)
        while True:
            current = await self._get(name)
            took_over = False
            if current is not None and not self._free(current):
                assert current.metadata is not None and current.spec is not None
                version = current.metadata.resourceVersion
                if seen is None or seen[0] != version:
                    seen = (version, self._clock())
                duration = current.spec.leaseDurationSeconds or self._s.lease_seconds
                wait = seen[1] + duration + self._s.oxide_call_seconds - self._clock()
                if wait > 0:
                    await self._pause(instance_id, current, wait, deadline)
                    continue
                took_over = True
            sent = self._clock()
            written = await self._take(name, instance_id, current)
            if written is None:
                continue  # someone else wrote first: look again
            if took_over:
                log.warning(
                    "took over an expired instance lease",
                    instance=instance_id,
                    previous_holder=current.spec.holderIdentity if current and current.spec else "",
                )
            return LeaseHold(instance_id, written, self._s, sent, clock=self._clock)

    def _free(self, lease: Lease) -> bool:
        holder = lease.spec.holderIdentity if lease.spec is not None else None
        return not holder or holder == self._s.identity

    async def _pause(self, instance_id: str, current: Lease, wait: float, deadline: float) -> None:
        left = deadline - self._clock()
        if left <= 0:
            holder = current.spec.holderIdentity if current.spec is not None else "?"
            raise LeaseUnavailable(
                f"instance {instance_id} is being changed by controller {holder}; retry later"
            )
        await asyncio.sleep(min(wait, self._s.renew_period, left))

    async def _get(self, name: str) -> Lease | None:
        try:
            return await self._client.get(Lease, name, namespace=self._s.namespace)
        except (ApiError, *TRANSPORT_ERRORS) as exc:
            if _code(exc) == 404:
                return None
            raise LeaseUnavailable(f"cannot read Lease {name}: {exc!r}") from exc

    async def _take(self, name: str, instance_id: str, current: Lease | None) -> Lease | None:
        now = micro_now()
        transitions = 0
        if current is not None and current.spec is not None:
            transitions = current.spec.leaseTransitions or 0
            if current.spec.holderIdentity != self._s.identity:
                transitions += 1
        lease = Lease(
            metadata=ObjectMeta(
                name=name,
                namespace=self._s.namespace,
                labels={INSTANCE_LABEL: instance_id, **MANAGED_BY},
                resourceVersion=(
                    current.metadata.resourceVersion
                    if current is not None and current.metadata is not None
                    else None
                ),
            ),
            spec=LeaseSpec(
                holderIdentity=self._s.identity,
                leaseDurationSeconds=self._s.lease_seconds,
                acquireTime=now,
                renewTime=now,
                leaseTransitions=transitions,
            ),
        )
        try:
            if current is None:
                return await self._client.create(lease)
            return await self._client.replace(lease)
        except (ApiError, *TRANSPORT_ERRORS) as exc:
            if _code(exc) == 409:
                return None  # someone else wrote first
            raise LeaseUnavailable(f"cannot take Lease {name}: {exc!r}") from exc

    # ---- hold ----------------------------------------------------------------------------

    async def _renew(self, held: LeaseHold) -> None:
        """Renew until cancelled or lost; a renewal never waits past the renew deadline."""
        while not held.lost:
            await asyncio.sleep(self._s.renew_period)
            sent = self._clock()
            budget = held.renewed_at + self._s.renew_deadline - sent
            if budget <= 0:
                held.lose(f"not renewed for {sent - held.renewed_at:.1f}s")
                return
            spec = held.lease.spec
            assert spec is not None
            renewed = Lease(
                metadata=held.lease.metadata,
                spec=LeaseSpec(
                    holderIdentity=spec.holderIdentity,
                    leaseDurationSeconds=spec.leaseDurationSeconds,
                    acquireTime=spec.acquireTime,
                    renewTime=micro_now(),
                    leaseTransitions=spec.leaseTransitions,
                ),
            )
            try:
                async with asyncio.timeout(budget):
                    held.lease = await self._client.replace(renewed)
                held.renewed_at = sent
            except ApiError as exc:
                if exc.status.code in (404, 409):
                    held.lose("the Lease was changed by someone else")
                    return
                log.warning("lease renewal failed", instance=held.instance_id, error=str(exc))
            except TRANSPORT_ERRORS as exc:
                log.warning("lease renewal failed", instance=held.instance_id, error=repr(exc))

    async def _release(self, held: LeaseHold) -> None:
        """Clear the holder so the next controller need not wait; best effort, bounded."""
        if held.lost:
            return  # it may be someone else's by now
        lease: Lease | None = held.lease
        try:
            async with asyncio.timeout(self._s.renew_period):
                for _ in range(2):
                    if lease is None or lease.spec is None or not self._free(lease):
                        return
                    try:
                        await self._client.replace(_released(lease))
                    except ApiError as exc:
                        if exc.status.code != 409:
                            raise
                        # A renewal cancelled in flight may have landed: look again.
                        lease = await self._get(lease_name(held.instance_id))
                        continue
                    return
        except (ApiError, LeaseUnavailable, *TRANSPORT_ERRORS) as exc:
            # Not fatal: the Lease then expires, and the next holder waits for that.
            log.warning("lease release failed", instance=held.instance_id, error=str(exc))


def _code(exc: BaseException) -> int | None:
    """The HTTP status of an API error; None for transport trouble."""
    return exc.status.code if isinstance(exc, ApiError) else None


def _released(lease: Lease) -> Lease:
    """``lease`` without a holder: the next controller may take it at once."""
    spec = lease.spec
    assert spec is not None
    return Lease(
        metadata=lease.metadata,
        spec=LeaseSpec(
            holderIdentity=None,
            leaseDurationSeconds=spec.leaseDurationSeconds,
            acquireTime=spec.acquireTime,
            renewTime=spec.renewTime,
            leaseTransitions=spec.leaseTransitions,
        ),
    )
