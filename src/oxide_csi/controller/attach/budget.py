"""The cycle budget: how many instances may be down for the plugin at once.

Why a budget: every attach and detach powers an instance off. A rollout that moves pods onto
many nodes at once would otherwise take as many nodes down at once, and with them the capacity
the moved pods need; on a cluster whose control-plane nodes carry volumes (compact clusters),
two control-plane nodes down at once lose etcd's quorum. So at most ``limit`` instances are
down on our account at any time, and never more than one control-plane node.

"Down on our account" runs from right before our stop request (of a running or a failed
instance) until the instance runs again, or the cycle ended without owing it a start: a cycle
that failed with the instance still off keeps its slot until recovery starts it. A worker
waiting for a slot has stopped nothing yet; its batch stays open meanwhile, so work arriving
for that instance joins the one cycle it is waiting for.

Recovery of an instance a previous controller left stopped never waits: starting it brings
capacity back. Such an instance is counted as down (:meth:`CycleBudget.count`), so a fresh
controller that inherits two stopped instances stops no third one until one of them runs. A hot
attach stops nothing and takes no slot.

Which node is a control-plane node is known only through the Kubernetes backend
(:class:`NodeRoles`, the Node's role labels). The file backend knows none: there, only the
overall limit applies.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import structlog

from oxide_csi import errors

if TYPE_CHECKING:
    from oxide_csi.oxide import Instance, OxideClient

log = structlog.get_logger(__name__)

#: The plugin's default for ``--max-concurrent-cycles``.
DEFAULT_MAX_CONCURRENT_CYCLES = 2


class NodeRoles(Protocol):
    async def control_plane(self, instance_id: str, instance_name: str) -> bool:
        """Whether the instance is a control-plane node of this cluster; raises
        :class:`~oxide_csi.errors.Unavailable` when that cannot be known now."""
        ...


class NoRoles:
    """The file backend: no Kubernetes to ask, so no node is known to be control plane."""

    async def control_plane(self, instance_id: str, instance_name: str) -> bool:
        return False


NO_ROLES: NodeRoles = NoRoles()


class NoCycleSlot(errors.Unavailable):
    """No slot came free before the cycle's deadline; the CO's retry queues the work again."""


@dataclass
class _Waiter:
    instance_id: str
    instance_name: str
    control_plane: bool
    granted: asyncio.Future[None]


class CycleBudget:
    """The slots of instances down for the plugin; ``limit`` None means no limit."""

    def __init__(self, limit: int | None, roles: NodeRoles = NO_ROLES) -> None:
        if limit is not None and limit < 1:
            raise ValueError("a cycle budget needs at least one slot")
        self._limit = limit
        self._roles = roles
        #: instance id -> (name, whether it is a control-plane node)
        self._down: dict[str, tuple[str, bool]] = {}
        self._waiters: list[_Waiter] = []

    @property
    def limit(self) -> int | None:
        return self._limit

    def down(self) -> dict[str, bool]:
        """Instances counted as down now, and whether each is a control-plane node."""
        return {iid: cp for iid, (_, cp) in self._down.items()}

    def waiting(self) -> int:
        """How many workers wait for a slot (for metrics and tests)."""
        return len(self._waiters)

    async def take(self, instance_id: str, instance_name: str, deadline: float) -> float:
        """Wait until the instance may be stopped, and count it as down.

        Returns the cycle's deadline moved on by the time spent waiting: the wait for a turn
        is not the cycle's time, so a cycle that waited still gets its whole bound from the
        stop on. Waits at most until ``deadline`` (:class:`NoCycleSlot` then). An instance
        already counted (a cycle that failed with it off) has its slot already.
        """
        if instance_id in self._down:
            return deadline
        if self._limit is None:
            self._down[instance_id] = (instance_name, False)
            return deadline
        control_plane = await self._role(instance_id, instance_name)
        began = time.monotonic()
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiter = _Waiter(instance_id, instance_name, control_plane, granted)
        self._waiters.append(waiter)
        self._grant()
        if granted.done():
            return deadline
        log.info(
            "waiting for a cycle slot",
            instance=instance_name,
            control_plane=control_plane,
            down=sorted(name for name, _ in self._down.values()),
            max_concurrent_cycles=self._limit,
        )
        try:
            await asyncio.wait_for(granted, timeout=max(0.0, deadline - began))
        except TimeoutError:
            self._withdraw(waiter)
            raise NoCycleSlot(
                f"instance {instance_name!r} waited for its turn to be power-cycled until the "
                f"cycle's deadline (at most {self._limit} instances down at once, and one "
                "control-plane node); retry"
            ) from None
        except BaseException:  # cancelled: the worker is closing
            self._withdraw(waiter)
            raise
        return deadline + (time.monotonic() - began)

    async def count(self, instance_id: str, instance_name: str) -> None:
        """Count an instance that is already off on our account (recovery), without waiting:
        starting it is what brings capacity back."""
        if instance_id in self._down:
            return
        control_plane = await self._role(instance_id, instance_name)
        self._down[instance_id] = (instance_name, control_plane)

    def give_back(self, instance_id: str) -> None:
        """The instance runs again (or is no longer ours to start): its slot is free."""
        if self._down.pop(instance_id, None) is not None:
            self._grant()

    # ---- internals -----------------------------------------------------------------------

    def _withdraw(self, waiter: _Waiter) -> None:
        """A waiter gives up; a slot granted in the same turn goes back at once."""
        if waiter in self._waiters:
            self._waiters.remove(waiter)
        if waiter.granted.done() and not waiter.granted.cancelled():
            self.give_back(waiter.instance_id)
        else:
            waiter.granted.cancel()

    def _fits(self, control_plane: bool) -> bool:
        assert self._limit is not None
        if len(self._down) >= self._limit:
            return False
        return not (control_plane and any(cp for _, cp in self._down.values()))

    def _grant(self) -> None:
        """Hand free slots to the waiters in arrival order; one that cannot go yet (a second
        control-plane node) lets the ones behind it that can go pass."""
        for waiter in list(self._waiters):
            if waiter.granted.done():
                continue
            if self._fits(waiter.control_plane):
                self._down[waiter.instance_id] = (waiter.instance_name, waiter.control_plane)
                self._waiters.remove(waiter)
                waiter.granted.set_result(None)

    async def _role(self, instance_id: str, instance_name: str) -> bool:
        """Whether the instance is a control-plane node; when that cannot be known now, it is
        taken to be one (the cautious side: at most one such node down at once)."""
        try:
            return await self._roles.control_plane(instance_id, instance_name)
        except errors.Unavailable as exc:
            log.warning(
                "cannot tell whether the instance is a control-plane node; counting it as one",
                instance=instance_name,
                error=str(exc),
            )
            return True


async def wait_turn(
    budget: CycleBudget, client: OxideClient, instance: Instance, deadline: float
) -> tuple[Instance, float]:
    """Take the instance's turn before a stop may follow; the instance as it is then, and the
    cycle's deadline (moved on by the wait, see :meth:`CycleBudget.take`).

    After a wait the instance is read again: meanwhile Oxide may have restarted a ``failed``
    one, or someone else stopped a running one, and the cycle must act on what it is now.
    """
    moved = await budget.take(instance.id, instance.name, deadline)
    if moved == deadline:
        return instance, deadline
    return await client.get_instance(instance.id, deadline=moved), moved
