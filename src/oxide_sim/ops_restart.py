"""Failed instances and the control plane's automatic restart of them, as Nexus does it.

Semantics follow omicron (``InstanceAutoRestart::can_reincarnate``, the ``instance_reincarnation``
background task, the instance-update saga):
- an instance whose VMM fails becomes ``failed``; its intended state is unchanged;
- Nexus restarts a failed instance by itself when its intended state is ``running``, its
  ``auto_restart_policy`` is ``best_effort`` or unset (the default is best effort), and its
  last automatic restart lies at least a cooldown (default one hour) back; the restart is a
  normal start (``starting`` -> ``running``) and sets ``time_last_auto_restarted``;
- a user's stop of a failed instance makes it ``stopped`` and its intended state ``stopped``,
  which cancels any restart still to come; a user's start of it is an ordinary start.
The API shows the policy, ``auto_restart_enabled`` (the policy permits restarts),
``time_last_auto_restarted`` and, while it lies ahead, ``auto_restart_cooldown_expiration``.

Unsure: the reincarnation task's period on a rack (60 s in omicron's default config); the
simulator restarts ``SimConfig.auto_restart_seconds`` after the failure, or when the cooldown
ends if that is later.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from oxide_sim.error_responses import invalid_request, not_found
from oxide_sim.model import InstanceRec, now_iso
from oxide_sim.views import instance_view

if TYPE_CHECKING:  # the core calls into this module when an instance fails
    from oxide_sim.core import Core, NameOrId

#: Instance states with a VMM that can fail.
_WITH_VMM = frozenset({"starting", "running", "stopping", "rebooting", "migrating"})
POLICIES = ("never", "best_effort")
_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def _parse(timestamp: str) -> datetime:
    return datetime.strptime(timestamp, _FORMAT).replace(tzinfo=UTC)


def _cooldown_left(inst: InstanceRec) -> float:
    if inst.auto_restart_cooldown_expiration is None:
        return 0.0
    left = _parse(inst.auto_restart_cooldown_expiration) - datetime.now(UTC)
    return max(0.0, left.total_seconds())


def will_restart(inst: InstanceRec) -> bool:
    """Whether the control plane restarts this failed instance (now or after its cooldown)."""
    return (
        inst.run_state == "failed"
        and inst.intended_state == "running"
        and inst.auto_restart_policy != "never"
    )


def schedule_restart(core: Core, inst: InstanceRec) -> None:
    """Plan the automatic restart of a just-failed instance; the caller holds the lock."""
    if not will_restart(inst):
        return
    delay = max(core.cfg.auto_restart_seconds, _cooldown_left(inst))
    iid, gen = inst.id, inst.gen
    core.scheduler.call_later(delay, lambda: _restart(core, iid, gen))


def _restart(core: Core, instance_id: str, gen: int) -> None:
    with core.lock:
        inst = core.state.instances.get(instance_id)
        if inst is None or inst.gen != gen or not will_restart(inst):
            return  # stopped, started or deleted meanwhile, or the policy changed
        ts = now_iso()
        inst.time_last_auto_restarted = ts
        cooldown = timedelta(seconds=core.cfg.auto_restart_cooldown_seconds)
        inst.auto_restart_cooldown_expiration = (_parse(ts) + cooldown).strftime(_FORMAT)
        inst.auto_restarts += 1
        core.set_run_state(inst, "starting")
        core.commit()
        new_gen = inst.gen
    core.scheduler.call_later(
        core.cfg.start_seconds,
        lambda: core.finish_transition(
            instance_id, new_gen, "starting", "running", "before_running"
        ),
    )


def fail_instance(core: Core, sel: NameOrId) -> dict[str, Any]:
    """Test hook: the instance's VMM fails (a sled rebooted, propolis crashed)."""
    with core.lock:
        inst = find_instance(core, sel)
        if inst.run_state not in _WITH_VMM:
            raise invalid_request(f"instance {inst.name} is {inst.run_state}: no VMM to fail")
        core.set_run_state(inst, "failed")
        core.commit()
        schedule_restart(core, inst)
        return instance_view(inst)


def set_policy(core: Core, sel: NameOrId, policy: str | None) -> dict[str, Any]:
    """Test hook: what ``PUT /v1/instances/{instance}`` with ``auto_restart_policy`` does."""
    if policy is not None and policy not in POLICIES:
        raise invalid_request(f"auto_restart_policy must be one of {POLICIES} or null")
    with core.lock:
        inst = find_instance(core, sel)
        inst.auto_restart_policy = policy
        inst.time_modified = now_iso()
        core.commit()
        if inst.run_state == "failed":
            schedule_restart(core, inst)
        return instance_view(inst)


def find_instance(core: Core, sel: NameOrId) -> InstanceRec:
    """The instance by id, or by name in any project (the /sim hooks take either)."""
    kind, value = sel
    for inst in core.state.instances.values():
        if (kind == "id" and inst.id == value) or (kind == "name" and inst.name == value):
            return inst
    raise not_found("instance", kind, value)
