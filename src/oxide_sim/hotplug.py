"""Hot-plug: a rack that attaches and detaches disks while the instance runs (``--hotplug``).

Oxide has prototyped hot-plug but not released it, so its API is unknown. The simulator keeps
the released endpoints (``POST /v1/instances/{instance}/disks/attach`` and ``.../detach``) and
merely accepts them for a ``running`` instance too; every other rule (slot limit, boot disk,
disk attached elsewhere, idempotence) is the one of a stopped instance. Without ``--hotplug``
nothing here runs and a running instance is refused exactly as Nexus refuses it (400
``InvalidRequest``, "instance is not fully stopped").

What the guest sees: on a rack the device would appear (or go) in the guest shortly after the
API answered. Instance hooks that implement ``disk_hotplugged``/``disk_unplugged`` (dev mode's
device plane) hear about it on the scheduler thread, under the instance's hook lock, so a stop
or start of the same instance cannot interleave with it; a hook call that finds the instance no
longer running (a stop overtook it) does nothing -- the stop took every device away already and
the next boot brings the attached ones.

``/sim/instances/{instance}/hotplug-silent`` makes the next N accepted hot attaches of an
instance never show their device in the guest, the failure the plugin's hot attach must detect
and repair with a power cycle.
"""

from __future__ import annotations

import logging

from oxide_sim.core import Core
from oxide_sim.model import DiskRec, InstanceRec
from oxide_sim.views import disk_view, instance_view

log = logging.getLogger(__name__)

#: The one state in which a hot-plug rack accepts attach and detach besides the stopped ones.
HOTPLUG_STATES = frozenset({"running"})


def accepts(core: Core, inst: InstanceRec) -> bool:
    """Whether this rack attaches/detaches to ``inst`` while it runs."""
    return core.cfg.hotplug and inst.run_state in HOTPLUG_STATES


def plugged(core: Core, inst: InstanceRec, d: DiskRec) -> None:
    """``d`` was just attached to running ``inst``: show the device to the guest (lock held)."""
    inst.hot_attaches += 1
    if inst.hotplug_silent > 0:
        inst.hotplug_silent -= 1
        log.info("hot attach of %s to %s accepted, device withheld", d.name, inst.name)
        return
    _notify(core, inst.id, d.id, "disk_hotplugged", want_attached=True)


def unplugged(core: Core, inst: InstanceRec, d: DiskRec) -> None:
    """``d`` was just detached from running ``inst``: take the device away (lock held)."""
    inst.hot_detaches += 1
    _notify(core, inst.id, d.id, "disk_unplugged", want_attached=False)


def _notify(core: Core, instance_id: str, disk_id: str, method: str, want_attached: bool) -> None:
    core.scheduler.call_later(
        0, lambda: _deliver(core, instance_id, disk_id, method, want_attached)
    )


def _deliver(core: Core, instance_id: str, disk_id: str, method: str, want_attached: bool) -> None:
    with core.hook_lock(instance_id):
        with core.lock:
            inst = core.state.instances.get(instance_id)
            d = core.state.disks.get(disk_id)
            if inst is None or d is None or inst.run_state != "running":
                return  # stopped meanwhile: the stop took the devices, the boot brings them
            attached = d.instance_id == instance_id and d.state == "attached"
            if attached != want_attached:
                return  # undone meanwhile; the later call's own delivery follows
            hooks = [h for h in core.hooks if hasattr(h, method)]
            view, disk = instance_view(inst), disk_view(d)
        for hook in hooks:
            try:
                getattr(hook, method)(dict(view), dict(disk))
            except Exception:
                # A device that cannot be shown is what a guest that missed the hot-plug sees.
                log.exception("instance hook %s failed for %s", method, view["name"])
