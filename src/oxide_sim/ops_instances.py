"""Instance operations: list, view, start, stop, list disks; the start-failure and guest
power-off hooks.

Semantics follow omicron ``nexus/src/app/instance.rs``:
- start of a ``starting``/``running`` instance succeeds without change (202);
  start of a ``stopping`` one is 409 ``instance must finish stopping before it can be started``;
  start of ``stopped``/``failed`` moves to ``starting``, then ``running`` after start_seconds;
- stop of a ``stopped`` instance succeeds without change; stop of ``failed`` makes it
  ``stopped`` at once (no VMM to stop) and cancels its automatic restart (``ops_restart``);
  stop of ``starting``/``running`` moves to ``stopping`` and ``stopped`` after stop_seconds;
  stop of ``stopping`` is accepted without change;
- while ``creating`` neither is allowed (400).
Both answer 202 with the instance as it is after the request.

Unsure: the exact 507 message of a start that finds no sled; the simulator uses Nexus's
"No sleds can fit the requested instance".
"""

from __future__ import annotations

import time
from typing import Any

from oxide_sim.core import Core, NameOrId
from oxide_sim.error_responses import conflict, insufficient_capacity, invalid_request
from oxide_sim.model import InstanceRec
from oxide_sim.ops_restart import find_instance
from oxide_sim.paged_lists import ListParams, paginate
from oxide_sim.views import disk_view, instance_view


def list_instances(core: Core, params: ListParams, project: NameOrId) -> dict[str, Any]:
    with core.lock:
        proj = core.project(project)
        items = [i for i in core.state.instances.values() if i.project_id == proj.id]
        return paginate(items, params, lambda i: (i.name, i.id), instance_view)


def get_instance(core: Core, sel: NameOrId, project: NameOrId | None) -> dict[str, Any]:
    with core.lock:
        return instance_view(core.instance(sel, project))


def list_instance_disks(
    core: Core, sel: NameOrId, project: NameOrId | None, params: ListParams
) -> dict[str, Any]:
    with core.lock:
        inst = core.instance(sel, project)
        return paginate(core.instance_disks(inst), params, lambda d: (d.name, d.id), disk_view)


def start_instance(core: Core, sel: NameOrId, project: NameOrId | None) -> dict[str, Any]:
    with core.lock:
        inst = core.instance(sel, project)
        state = inst.run_state
        if state in ("starting", "running"):
            return instance_view(inst)
        if state == "stopping":
            raise conflict("instance must finish stopping before it can be started")
        if state not in ("stopped", "failed"):
            raise conflict(f"instance is in state {state} but it must be stopped to be started")
        if inst.start_failures > 0:
            inst.start_failures -= 1
            core.commit()
            raise insufficient_capacity("No sleds can fit the requested instance")
        core.set_run_state(inst, "starting")
        inst.intended_state = "running"
        inst.starts += 1
        core.commit()
        gen = inst.gen
        iid = inst.id
        core.scheduler.call_later(
            core.cfg.start_seconds,
            lambda: core.finish_transition(iid, gen, "starting", "running", "before_running"),
        )
        return instance_view(inst)


def stop_instance(core: Core, sel: NameOrId, project: NameOrId | None) -> dict[str, Any]:
    with core.lock:
        inst = core.instance(sel, project)
        state = inst.run_state
        if state in ("stopped", "stopping"):
            return instance_view(inst)
        if state == "creating":
            raise invalid_request("cannot change instance state while it is still being created")
        inst.intended_state = "stopped"  # also what cancels the restart of a failed instance
        if state == "failed":
            core.set_run_state(inst, "stopped")
            core.commit()
            return instance_view(inst)
        inst.stops += 1
        return _power_down(core, inst)


def guest_power_off(core: Core, name_or_id: NameOrId) -> dict[str, Any]:
    """The guest shut itself down (``poweroff`` inside it): the VMM ends, the instance goes
    ``stopping`` then ``stopped`` as after a stop, and Oxide does not start it again (only a
    ``failed`` instance is restarted by the control plane). Only a running guest can do so;
    anything else is 409, as nothing inside a stopped or booting VM runs a shutdown."""
    with core.lock:
        inst = find_instance(core, name_or_id)
        if inst.run_state != "running":
            raise conflict(f"instance is {inst.run_state}: only a running guest can power off")
        inst.guest_power_offs += 1
        return _power_down(core, inst)


def _power_down(core: Core, inst: InstanceRec) -> dict[str, Any]:
    """``stopping`` now, ``stopped`` (with the hooks) after ``stop_seconds``; lock held."""
    core.set_run_state(inst, "stopping")
    core.commit()
    gen = inst.gen
    iid = inst.id
    core.scheduler.call_later(
        core.cfg.stop_seconds,
        lambda: core.finish_transition(iid, gen, "stopping", "stopped", "after_stopped"),
    )
    return instance_view(inst)


def set_test_counter(core: Core, name_or_id: NameOrId, counter: str, count: int) -> dict[str, Any]:
    """Set one of an instance's test-hook counters (``start_failures``: the next starts that
    fail with 507; ``hotplug_silent``: the next hot attaches the guest never sees). The
    /sim hooks take an instance by id or by bare name, in any project."""
    with core.lock:
        inst = find_instance(core, name_or_id)
        setattr(inst, counter, count)
        core.commit()
        return {"instance": inst.name, counter: count}


def instance_stats(core: Core) -> dict[str, Any]:
    """Per instance counters; ``down_seconds`` is every second it spent not running (the
    period it may be in now included), in wall-clock time."""
    with core.lock:
        now = time.time()
        return {
            i.name: {
                "id": i.id,
                "stops": i.stops,
                "hard_stops": i.stops,
                "guest_power_offs": i.guest_power_offs,
                "starts": i.starts,
                "hot_attaches": i.hot_attaches,
                "hot_detaches": i.hot_detaches,
                "state": i.run_state,
                "down_seconds": round(i.seconds_down(now), 3),
            }
            for i in core.state.instances.values()
        }
