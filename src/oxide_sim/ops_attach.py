"""Attaching and detaching disks, with the rules and messages of Nexus's datastore
(omicron ``nexus/db-queries/src/db/datastore/disk.rs``).

- Only instances without a VMM (``stopped``, ``creating``; ``failed`` too for detach) accept
  attach/detach; anything with a VMM gets ``cannot attach disk: instance is not fully stopped``
  (Nexus uses that exact wording for detach as well).
- Attaching a disk already attached to the same instance, or detaching a detached disk,
  succeeds without change (idempotent), as in Nexus.
- A disk attached elsewhere: ``cannot attach disk "d": disk is attached to another instance``.
- At most ``SimConfig.slot_limit`` disks (boot disk counted; 8 up to v17, 12 since):
  ``cannot attach more than N disks to instance``.
- Both are synchronous in Nexus for stopped instances (no ``attaching``/``detaching`` stage).
  With ``SimConfig.attach_seconds > 0`` the simulator shows those stages for that long (the
  full ``detached -> attaching -> attached -> detaching -> detached`` machine), so a client's
  waiting on them can be tested; the rules above apply unchanged to the transitional states.

- A hot-plug rack (``SimConfig.hotplug``) accepts both for a ``running`` instance too, under
  the same rules (see ``hotplug``).
- Detaching the instance's boot disk: 409 ``boot disk cannot be detached`` (Nexus's datastore
  answers a conflict, not a bad request).
"""

from __future__ import annotations

from typing import Any

from oxide_sim import hotplug
from oxide_sim.core import Core, NameOrId
from oxide_sim.error_responses import conflict, invalid_request
from oxide_sim.model import DiskRec, InstanceRec
from oxide_sim.views import disk_view

#: Instance states in which the instance has no VMM.
_NO_VMM = frozenset({"stopped", "creating", "failed"})
_ATTACHED_STATES = frozenset({"attaching", "attached", "detaching"})


def _resolve(
    core: Core, instance: NameOrId, project: NameOrId | None, disk: NameOrId
) -> tuple[InstanceRec, DiskRec]:
    inst = core.instance(instance, project)
    # A disk named (not id'd) is looked up in the instance's project, however the instance
    # itself was selected.
    disk_project: NameOrId | None = ("id", inst.project_id) if disk[0] == "name" else None
    rec = core.disk(disk, disk_project)
    if rec.project_id != inst.project_id:
        raise invalid_request("disk must be in the same project as the instance")
    return inst, rec


def attach(
    core: Core, instance: NameOrId, project: NameOrId | None, disk: NameOrId
) -> dict[str, Any]:
    with core.lock:
        inst, d = _resolve(core, instance, project, disk)
        if d.state in ("attached", "attaching") and d.instance_id == inst.id:
            return disk_view(d)
        if d.state in ("creating", "detached"):
            hot = hotplug.accepts(core, inst)
            if inst.run_state not in _NO_VMM and not hot:
                raise invalid_request("cannot attach disk: instance is not fully stopped")
            if inst.run_state not in ("stopped", "creating") and not hot:
                raise invalid_request(f"cannot attach disk to instance in {inst.run_state} state")
            count = sum(1 for x in core.instance_disks(inst) if x.state in _ATTACHED_STATES)
            limit = core.cfg.slot_limit
            if count >= limit:
                raise invalid_request(f"cannot attach more than {limit} disks to instance")
            _transition(core, d, "attaching", "attached", inst.id, hot)
            return disk_view(d)
        if d.state in _ATTACHED_STATES:
            raise invalid_request(
                f'cannot attach disk "{d.name}": disk is attached to another instance'
            )
        raise invalid_request(f'cannot attach disk "{d.name}": invalid state {d.state}')


def detach(
    core: Core, instance: NameOrId, project: NameOrId | None, disk: NameOrId
) -> dict[str, Any]:
    with core.lock:
        inst, d = _resolve(core, instance, project, disk)
        if d.state == "detached":
            return disk_view(d)
        if d.state == "detaching" and d.instance_id == inst.id:
            return disk_view(d)
        if d.state == "attached" and d.instance_id == inst.id:
            hot = hotplug.accepts(core, inst)
            if inst.run_state not in _NO_VMM and not hot:
                raise invalid_request("cannot attach disk: instance is not fully stopped")
            if inst.boot_disk_id == d.id:
                raise conflict("boot disk cannot be detached")
            _transition(core, d, "detaching", "detached", inst.id, hot)
            return disk_view(d)
        if d.state == "attaching" and d.instance_id == inst.id:
            raise invalid_request(
                f'cannot detach disk "{d.name}": disk is currently being attached'
            )
        if d.state in _ATTACHED_STATES:
            raise invalid_request(
                f'cannot detach disk "{d.name}": disk is attached to another instance'
            )
        raise invalid_request(f'cannot detach disk "{d.name}": invalid state {d.state}')


def _transition(core: Core, d: DiskRec, through: str, to: str, instance_id: str, hot: bool) -> None:
    """Move ``d`` to ``to`` at once, or via ``through`` for ``attach_seconds``; the caller
    holds the lock. ``hot``: the instance runs, so the guest sees the device come or go once
    the disk has settled."""
    delay = core.cfg.attach_seconds
    if delay <= 0:
        core.set_disk_state(d, to, instance_id)
        _settled(core, d, instance_id, hot)
        core.commit()
        return
    core.set_disk_state(d, through, instance_id)
    core.commit()
    disk_id, gen = d.id, d.gen
    core.scheduler.call_later(
        delay, lambda: _finish(core, disk_id, gen, through, to, instance_id, hot)
    )


def _finish(
    core: Core, disk_id: str, gen: int, through: str, to: str, instance_id: str, hot: bool
) -> None:
    with core.lock:
        d = core.state.disks.get(disk_id)
        if d is None or d.gen != gen or d.state != through:
            return  # changed meanwhile (faulted, or a restart already completed it)
        core.set_disk_state(d, to)
        _settled(core, d, instance_id, hot)
        core.commit()


def _settled(core: Core, d: DiskRec, instance_id: str, hot: bool) -> None:
    inst = core.state.instances.get(instance_id)
    if not hot or inst is None:
        return
    if d.state == "attached":
        hotplug.plugged(core, inst, d)
    else:
        hotplug.unplugged(core, inst, d)
