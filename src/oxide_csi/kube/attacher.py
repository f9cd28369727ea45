"""The cluster's rules and Events around the attach coordinator.

:class:`ClusterAttacher` stands between the CSI servicer and the coordinator (it has the
servicer's ``Attacher`` shape): before anything can be stopped it refuses instances that are
not attachable Nodes of this cluster, and every refusal (that one, a full instance, the
controller's own instance, anything FAILED_PRECONDITION or RESOURCE_EXHAUSTED) becomes a
Warning Event on the volume's PVC. :class:`CycleEvents` holds the coordinator's observers: a
cycle is told on its Node (stopping instance X for these volumes; started again after N
seconds) and on each PVC.

Which PVC a disk belongs to is in the disk's description (``controller/metadata.py``), which
every publish brings along; disks seen only by recovery are read from Oxide, in the background.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import TYPE_CHECKING

from oxide_csi import errors
from oxide_csi.controller.attach import AttachRecord, CycleReport, OpKind, OpRecord
from oxide_csi.controller.metadata import VolumeMeta
from oxide_csi.kube.events import NORMAL, WARNING, EventRecorder, Lookup, Target
from oxide_csi.kube.nodes import NodeGate, NotANode
from oxide_csi.oxide import Disk, Instance, OxideClient, api_errors

if TYPE_CHECKING:
    from oxide_csi.servicers.controller import Attacher

#: How many disk -> PVC answers we keep (a cluster's volumes; one small tuple each).
_PVC_CACHE = 8192


class ClusterAttacher:
    def __init__(
        self, inner: Attacher, gate: NodeGate, events: CycleEvents, oxide: OxideClient
    ) -> None:
        self._inner = inner
        self._gate = gate
        self._events = events
        self._oxide = oxide

    async def attach(
        self, disk_id: str, instance: str, *, deadline: float, known: Disk | None = None
    ) -> object:
        self._events.learn(known)
        try:
            await self._require_attachable(instance, deadline)
            return await self._inner.attach(disk_id, instance, deadline=deadline, known=known)
        except (errors.FailedPrecondition, errors.ResourceExhausted) as exc:
            self._events.refused(disk_id, "AttachRefused", f"not attached to {instance}: {exc}")
            raise

    async def detach(
        self, disk_id: str, instance: str, *, deadline: float, known: Disk | None = None
    ) -> object:
        self._events.learn(known)
        try:
            if known is None or known.instance_id is not None:  # else: nothing to cycle
                # An instance that no longer exists needs no cycle: the coordinator answers.
                with contextlib.suppress(errors.NotFound):
                    await self._require_attachable(instance, deadline)
            return await self._inner.detach(disk_id, instance, deadline=deadline, known=known)
        except (errors.FailedPrecondition, errors.ResourceExhausted) as exc:
            self._events.refused(disk_id, "DetachRefused", f"not detached from {instance}: {exc}")
            raise

    async def pending_attach(self, disk_id: str) -> str | None:
        return await self._inner.pending_attach(disk_id)

    async def _require_attachable(self, instance: str, deadline: float) -> None:
        """The gate, except that an instance Oxide does not know is NOT_FOUND, as CSI wants
        for a node that does not exist (looked up only when the gate refuses)."""
        try:
            await self._gate.require_attachable(instance)
        except NotANode:
            try:
                await self._oxide.get_instance(instance, deadline=deadline)
            except api_errors.OxideNotFound:
                raise errors.NotFound(f"instance {instance!r} does not exist") from None
            except api_errors.OxideError:
                pass  # the gate's answer stands
            raise


class CycleEvents:
    """The coordinator's observers (quick, never raise) and the disk -> PVC memory."""

    def __init__(self, gate: NodeGate, events: EventRecorder, oxide: OxideClient) -> None:
        self._gate = gate
        self._events = events
        self._oxide = oxide
        self._pvcs: dict[str, tuple[str, str] | None] = {}

    def on_stopping(self, record: AttachRecord) -> None:
        name = record.instance_name or record.instance_id
        self._events.emit(
            self._node(record.instance_id, record.instance_name),
            NORMAL,
            "StoppingInstance",
            f"Stopping instance {name} ({record.instance_id}) to {self._ops_text(record.ops)}",
        )
        for op in record.ops:
            self._events.emit(
                self._pvc(op.disk_id),
                NORMAL,
                "StoppingInstance",
                f"Stopping instance {name} to {op.kind.value} this volume",
            )

    def on_power_off(self, instance: Instance, how: str, why: str) -> None:
        """Graceful power-off (``graceful.py``): the Node says whether its guest shut down in
        order or Oxide pulled the cord, and why."""
        name = instance.name or instance.id
        node = self._node(instance.id, instance.name)
        if how == "guest":
            text = f"Instance {name} powered itself off in order (graceful power-off)"
            self._events.emit(node, NORMAL, "GuestPoweredOff", text)
            return
        text = f"Graceful power-off of instance {name} not possible ({why}): Oxide's hard stop"
        self._events.emit(node, NORMAL if why == "not-running" else WARNING, "HardPowerOff", text)

    def on_cycle(self, report: CycleReport) -> None:
        name = report.instance_name or report.instance_id
        node = self._node(report.instance_id, report.instance_name)
        down = (
            f" after {report.stopped_seconds:.1f}s powered off"
            if report.stopped_seconds is not None
            else ""
        )
        if report.started:
            self._events.emit(
                node, NORMAL, "StartedInstance", f"Started instance {name} again{down}"
            )
        if not report.ok:
            self._events.emit(
                node,
                WARNING,
                "AttachCycleFailed",
                f"Attach/detach cycle on instance {name} failed; the work is retried",
            )
        for op in report.ops:
            done = "Attached to" if op.kind is OpKind.ATTACH else "Detached from"
            self._events.emit(
                self._pvc(op.disk_id),
                NORMAL,
                "Attached" if op.kind is OpKind.ATTACH else "Detached",
                f"{done} instance {name}{down}",
            )

    def refused(self, disk_id: str, reason: str, message: str) -> None:
        self._events.emit(self._pvc(disk_id), WARNING, reason, message)

    def learn(self, disk: Disk | None) -> None:
        if disk is None:
            return
        meta = VolumeMeta.decode(disk.description)
        self._pvcs[disk.id] = meta.pvc_ref if meta is not None else None
        while len(self._pvcs) > _PVC_CACHE:
            del self._pvcs[next(iter(self._pvcs))]

    def _ops_text(self, ops: Iterable[OpRecord]) -> str:
        parts = []
        for kind in OpKind:
            vols = [self._volume_text(op.disk_id) for op in ops if op.kind is kind]
            if vols:
                parts.append(f"{kind.value} {', '.join(vols)}")
        return " and ".join(parts) or "finish earlier work"

    def _volume_text(self, disk_id: str) -> str:
        pvc = self._pvcs.get(disk_id)
        return f"PVC {pvc[0]}/{pvc[1]}" if pvc else f"disk {disk_id}"

    def _node(self, instance_id: str, instance_name: str) -> Lookup:
        async def lookup() -> Target | None:
            name = await self._gate.node_name(instance_id, instance_name)
            return Target.node(name) if name else None

        return lookup

    def _pvc(self, disk_id: str) -> Lookup:
        async def lookup() -> Target | None:
            if disk_id not in self._pvcs:
                try:
                    self.learn(await self._oxide.get_disk(disk_id))
                except api_errors.OxideError:
                    return None
            pvc = self._pvcs.get(disk_id)
            return Target.pvc(*pvc) if pvc else None

        return lookup
