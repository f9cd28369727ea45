"""What is checked before an instance is powered off, so that no refusal costs a power cycle.

Why before: Oxide checks an attach only when it is applied, and it can be applied only to a
stopped instance. Everything Oxide would refuse after the stop (an instance or disk of another
project, a disk that cannot attach, a full instance) must therefore be refused before it, or
each refusal costs the node a hard power-off and a boot -- and the CO's retries one more each.

The same goes for the one instance that must never be cycled at all: the controller's own. A
controller that powers off the instance it runs on dies mid-cycle, and nobody is left to start
the instance again (its record would say so, but only a controller running elsewhere reads it).
"""

from __future__ import annotations

import asyncio

from oxide_csi import errors
from oxide_csi.controller.slots import SlotLimit, fixed_slot_limit
from oxide_csi.oxide import Disk, Instance, OxideClient


class Preflight:
    """The checks of one coordinator: its project (looked up once), its own instance, the slots.

    ``own_instance_id`` is the instance the controller runs on (None: the guard is off);
    ``max_disks`` the per-instance limit, boot disk included, or a
    :data:`~oxide_csi.controller.slots.SlotLimit` that asks the rack for it.
    """

    def __init__(
        self, client: OxideClient, *, own_instance_id: str | None, max_disks: int | SlotLimit
    ) -> None:
        self._client = client
        self._own = own_instance_id.lower() if own_instance_id else None
        self._slot_limit = max_disks if callable(max_disks) else fixed_slot_limit(max_disks)
        self._project_id: str | None = None
        self._lock = asyncio.Lock()

    async def project_id(self, deadline: float) -> str:
        """The id of the controller's project; read once, it cannot change under a name."""
        if self._project_id is None:
            async with self._lock:
                if self._project_id is None:
                    project = await self._client.get_project(deadline=deadline)
                    self._project_id = project.id
        return self._project_id

    def not_own(self, inst: Instance, what: str) -> None:
        """FailedPrecondition when ``inst`` runs this controller: nothing may stop it."""
        if self._own is not None and inst.id.lower() == self._own:
            raise errors.FailedPrecondition(
                f"{what}: instance {inst.name!r} runs this controller, and attaching or "
                "detaching a disk would power it off with the controller on it (nobody would "
                "start it again); keep Oxide volumes off this node (the attachable topology), "
                "or run the controller on another instance"
            )

    async def same_project(self, inst: Instance, disk: Disk, what: str, deadline: float) -> None:
        """FailedPrecondition unless instance and disk are both in the controller's project:
        Oxide attaches only within one project, and we must not stop an instance we do not
        manage."""
        project = await self.project_id(deadline)
        if inst.project_id != project:
            raise errors.FailedPrecondition(
                f"{what}: instance {inst.name!r} is not in the controller's project; "
                "the plugin attaches disks only to instances of its own project"
            )
        if disk.project_id != project:
            raise errors.FailedPrecondition(
                f"{what}: disk {disk.name!r} is not in the controller's project"
            )

    async def slot_limit(self, deadline: float) -> int:
        """The disks an instance may hold (8 up to release v17, 12 since, or lower by flag)."""
        return await self._slot_limit(deadline)

    def free_slot(
        self,
        inst: Instance,
        listed: set[str],
        reserved: tuple[set[str], set[str]],
        what: str,
        max_disks: int,
    ) -> None:
        """ResourceExhausted when the instance has no free slot of its ``max_disks``: every
        listed disk (boot disk included) plus queued attaches minus queued detaches."""
        attaches, detaches = reserved
        used = len((listed | attaches) - detaches)
        if used >= max_disks:
            raise errors.ResourceExhausted(
                f"{what}: instance {inst.name!r} has no free disk slot "
                f"({used} of {max_disks} in use or reserved)"
            )
