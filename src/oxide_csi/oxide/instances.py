"""Instance endpoints: view, list, start/stop, and the disks attached to an instance.

Start, stop, attach and detach are state transitions toward a target, and Nexus treats a
repeat of one that already happened as success (omicron: ``instance_start_allowed`` answers
"already started" for an active instance, a stop of a stopped instance is "already done", an
attach of a disk attached to the same instance and a detach of a detached disk return the disk
unchanged). Still, after an ambiguous failure (500, dropped connection, read timeout) the
transport does not repeat the POST blindly: a stop is a hard power-off, and the first try may
have landed long ago. It asks the resolver, which looks at the resource: if it is at, or on
its way to, the target, the call succeeded; only if not is the POST repeated. Should a repeat
meet a client error (an ``OxideConflict`` because the first try already moved the instance on to
``stopping``, say), the same look decides.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from oxide_csi.oxide import api_errors
from oxide_csi.oxide.base import ClientBase
from oxide_csi.oxide.disks import DISK
from oxide_csi.oxide.models import Disk, Instance
from oxide_csi.oxide.retry import Safety
from oxide_csi.oxide.selectors import NameOrId, is_uuid, normalize
from oxide_csi.oxide.transport import Resolved, Resolver

INSTANCE = "/v1/instances/{instance}"
INSTANCES = "/v1/instances"
INSTANCE_DISKS = "/v1/instances/{instance}/disks"
ATTACH = "/v1/instances/{instance}/disks/attach"
DETACH = "/v1/instances/{instance}/disks/detach"
START = "/v1/instances/{instance}/start"
STOP = "/v1/instances/{instance}/stop"

#: Instance states that show a start (or stop) request already took effect.
_STARTED = frozenset({"starting", "running"})
_STOPPED = frozenset({"stopping", "stopped"})


class InstanceOps(ClientBase):
    """Endpoints under /v1/instances."""

    async def list_instances(self, *, deadline: float | None = None) -> AsyncIterator[Instance]:
        query: dict[str, str | int] = {"project": self._cfg.project}
        async for raw in self._list(INSTANCES, INSTANCES, query, deadline):
            yield Instance.from_api(raw)

    async def get_instance(self, instance: NameOrId, *, deadline: float | None = None) -> Instance:
        return Instance.from_api(await self._view(INSTANCE, "instance", instance, deadline))

    async def list_instance_disks(
        self, instance: NameOrId, *, deadline: float | None = None
    ) -> AsyncIterator[Disk]:
        """The disks attached to ``instance`` (boot disk included)."""
        path = self._path(INSTANCE_DISKS, instance=instance)
        async for raw in self._list(INSTANCE_DISKS, path, self._scoped(instance), deadline):
            yield Disk.from_api(raw)

    async def start_instance(
        self, instance: NameOrId, *, deadline: float | None = None
    ) -> Instance:
        """Ask the instance to start; returns it as ``starting`` (or already ``running``)."""
        resolve = self._instance_in(instance, _STARTED, deadline)
        return Instance.from_api(await self._transition(START, instance, resolve, deadline))

    async def stop_instance(self, instance: NameOrId, *, deadline: float | None = None) -> Instance:
        """Ask the instance to stop; returns it as ``stopping`` (or already ``stopped``)."""
        resolve = self._instance_in(instance, _STOPPED, deadline)
        return Instance.from_api(await self._transition(STOP, instance, resolve, deadline))

    async def attach_disk(
        self, instance: NameOrId, disk: NameOrId, *, deadline: float | None = None
    ) -> Disk:
        """Attach ``disk`` to the (stopped) ``instance``; returns the disk.

        A disk name is looked up in the instance's project by the server.
        """

        async def resolve(_: api_errors.OxideError) -> Resolved | None:
            found = await self._disk_or_none(disk, deadline)
            if found is None:
                return None
            current, raw = found
            if (
                current.state in ("attaching", "attached")
                and current.instance_id is not None
                and await self._same_instance(instance, current.instance_id, deadline)
            ):
                return Resolved(raw)
            return None

        body = {"disk": normalize(disk)}
        return Disk.from_api(await self._transition(ATTACH, instance, resolve, deadline, body))

    async def detach_disk(
        self, instance: NameOrId, disk: NameOrId, *, deadline: float | None = None
    ) -> Disk:
        """Detach ``disk`` from the (stopped) ``instance``; returns the disk."""

        async def resolve(_: api_errors.OxideError) -> Resolved | None:
            found = await self._disk_or_none(disk, deadline)
            if found is None:
                return None
            current, raw = found
            if current.state == "detached":
                return Resolved(raw)
            if (
                current.state == "detaching"
                and current.instance_id is not None
                and await self._same_instance(instance, current.instance_id, deadline)
            ):
                return Resolved(raw)
            return None

        body = {"disk": normalize(disk)}
        return Disk.from_api(await self._transition(DETACH, instance, resolve, deadline, body))

    # ---- helpers -------------------------------------------------------------------------

    async def _transition(
        self,
        template: str,
        instance: NameOrId,
        resolve: Resolver,
        deadline: float | None,
        body: dict[str, str] | None = None,
    ) -> object:
        return await self._t.request(
            "POST",
            template,
            self._path(template, instance=instance),
            query=self._scoped(instance),
            body=body,
            deadline=deadline,
            safety=Safety.TRANSITION,
            resolve=resolve,
        )

    def _instance_in(
        self, instance: NameOrId, states: frozenset[str], deadline: float | None
    ) -> Resolver:
        async def resolve(_: api_errors.OxideError) -> Resolved | None:
            try:
                raw = await self._view(INSTANCE, "instance", instance, deadline)
            except api_errors.OxideNotFound:
                return None
            if Instance.from_api(raw).run_state in states:
                return Resolved(raw)
            return None

        return resolve

    async def _disk_or_none(
        self, disk: NameOrId, deadline: float | None
    ) -> tuple[Disk, object] | None:
        """The disk and its raw JSON (returned as the call's result when resolved), or None."""
        try:
            raw = await self._view(DISK, "disk", disk, deadline)
        except api_errors.OxideNotFound:
            return None
        return Disk.from_api(raw), raw

    async def _same_instance(
        self, instance: NameOrId, instance_id: str, deadline: float | None
    ) -> bool:
        if is_uuid(instance):
            return str(instance).lower() == instance_id.lower()
        current = await self.get_instance(instance, deadline=deadline)
        return current.id.lower() == instance_id.lower()
