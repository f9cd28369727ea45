"""Deleting an instance, as Nexus does it (omicron ``nexus/src/app/instance.rs``).

Only an instance without a VMM can be deleted (``stopped`` or ``failed``); anything else is
400 ``cannot delete instance: instance is running or has not yet fully stopped``. Its disks,
the boot disk included, are detached, not deleted: they outlive the instance and can be
attached elsewhere. The answer is 204.

Why the simulator needs it: a node deleted while the plugin still has a record for it, or a
volume attached to it, is a case the controller must survive (the disk must come free).
"""

from __future__ import annotations

from oxide_sim.core import Core, NameOrId
from oxide_sim.error_responses import invalid_request

_DELETABLE = frozenset({"stopped", "failed"})


def delete_instance(core: Core, sel: NameOrId, project: NameOrId | None) -> None:
    with core.lock:
        inst = core.instance(sel, project)
        if inst.run_state not in _DELETABLE:
            raise invalid_request(
                "cannot delete instance: instance is running or has not yet fully stopped"
            )
        for disk in core.instance_disks(inst):
            core.set_disk_state(disk, "detached")
        del core.state.instances[inst.id]
        core.commit()
