"""The simulated control plane's shared core: state, lock, persistence, lookups and hooks.

Every API operation (``ops_*`` modules) runs with ``Core.lock`` held and calls ``commit()``
after a mutation, so concurrent requests see a consistent store and the state file always
matches what clients were told. Instance hooks (dev mode's loop devices) run *outside* the main
lock, serialized per instance, because they may be slow or even call back into the API.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from oxide_sim.backing import BackingStore
from oxide_sim.error_responses import invalid_request, not_found
from oxide_sim.model import DiskRec, InstanceRec, ProjectRec, SnapshotRec, State, new_id, now_iso
from oxide_sim.ops_restart import schedule_restart
from oxide_sim.persistence import StateFile
from oxide_sim.scheduler import Scheduler
from oxide_sim.sim_config import SimConfig
from oxide_sim.views import disk_view, instance_view

log = logging.getLogger(__name__)

#: A parsed ``NameOrId``: ("id", uuid) or ("name", name).
NameOrId = tuple[str, str]

GIB = 2**30
BOOT_DISK_SIZE = 20 * GIB
INSTANCE_MEMORY = 4 * GIB
INSTANCE_NCPUS = 2
#: States of an instance that is down: powered off or on its way off or back on.
DOWN_STATES = frozenset({"stopping", "stopped", "starting"})


class InstanceHook(Protocol):
    """Called synchronously inside an instance's start/stop transition (dicts are API JSON)."""

    def before_running(self, instance: dict[str, Any], disks: list[dict[str, Any]]) -> None: ...

    def after_stopped(self, instance: dict[str, Any], disks: list[dict[str, Any]]) -> None: ...


class Core:
    def __init__(self, cfg: SimConfig) -> None:
        self.cfg = cfg
        self.lock = threading.RLock()
        self.scheduler = Scheduler()
        self.file = StateFile(cfg.state_dir) if cfg.state_dir is not None else None
        self.backing = BackingStore(cfg.disk_data_dir) if cfg.disk_data_dir is not None else None
        self.hooks: list[InstanceHook] = []
        self._hook_locks: dict[str, threading.Lock] = {}
        self.state = State()
        #: The most instances down at once since boot (``/sim/stats``): what a test of the
        #: plugin's cycle budget reads, from the rack's side rather than the plugin's.
        self.most_down = 0

    # ----- lifecycle -------------------------------------------------------------------------

    def boot(self) -> None:
        """Load (or seed) the state, reconcile it with the config, finish in-flight work."""
        loaded = self.file.load() if self.file is not None else None
        with self.lock:
            if loaded is not None:
                self.state = loaded
            self._seed()
            self._complete_in_flight()
            self.commit()
        self.scheduler.start()

    def shutdown(self) -> None:
        self.scheduler.stop()

    def commit(self) -> None:
        """Persist after a mutation; the caller holds ``lock``."""
        if self.file is not None:
            self.file.save(self.state)

    def _seed(self) -> None:
        st = self.state
        seeds = [(self.cfg.project, self.cfg.resolved_instance_names())]
        seeds += [(extra, [f"{extra}-0"]) for extra in self.cfg.extra_projects]
        for project, names in seeds:
            proj = next((p for p in st.projects.values() if p.name == project), None)
            if proj is None:
                ts = now_iso()
                proj = ProjectRec(new_id(), project, "simulated project", ts, ts)
                st.projects[proj.id] = proj
            existing = {i.name for i in st.instances.values() if i.project_id == proj.id}
            for name in names:
                if name not in existing:
                    self._create_running_instance(proj, name)
        if self.backing is not None:
            for d in st.disks.values():
                if not self.backing.disk_path(d.id).exists():
                    self.backing.create_blank(d.id, d.size)

    def _create_running_instance(self, proj: ProjectRec, name: str) -> None:
        ts = now_iso()
        inst = InstanceRec(
            id=new_id(),
            name=name,
            description=f"simulated instance {name}",
            project_id=proj.id,
            hostname=name,
            ncpus=INSTANCE_NCPUS,
            memory=INSTANCE_MEMORY,
            run_state="running",
            time_created=ts,
            time_modified=ts,
            time_run_state_updated=ts,
        )
        boot_name = f"{name}-boot"[:63]
        if any(d.name == boot_name and d.project_id == proj.id for d in self.state.disks.values()):
            boot_name = f"boot-{inst.id[:8]}"
        disk = DiskRec(
            id=new_id(),
            name=boot_name,
            description=f"boot disk of {name}",
            project_id=proj.id,
            size=BOOT_DISK_SIZE,
            block_size=4096,
            state="attached",
            time_created=ts,
            time_modified=ts,
            instance_id=inst.id,
        )
        inst.boot_disk_id = disk.id
        self.state.instances[inst.id] = inst
        self.state.disks[disk.id] = disk
        if self.backing is not None:
            self.backing.create_blank(disk.id, disk.size)

    def _complete_in_flight(self) -> None:
        """Finish transitions a previous process left half-way (it died or was stopped)."""
        st = self.state
        for d in st.disks.values():
            if d.state in ("creating", "detaching"):
                self.set_disk_state(d, "detached")
            elif d.state == "attaching":
                self.set_disk_state(d, "attached")
        for s in st.snapshots.values():
            if s.state == "creating":
                s.state = "ready"
                s.gen += 1
        for inst in st.instances.values():
            if inst.run_state == "starting":
                try:
                    self._run_hooks(inst, "before_running", "starting")
                except Exception:
                    log.exception("instance hook before_running failed for %s", inst.name)
                    self.set_run_state(inst, "failed")
                else:
                    self.set_run_state(inst, "running")
            elif inst.run_state == "stopping":
                try:
                    self._run_hooks(inst, "after_stopped", "stopped")
                except Exception:
                    log.exception("instance hook after_stopped failed for %s", inst.name)
                self.set_run_state(inst, "stopped")
            if inst.run_state == "failed":
                schedule_restart(self, inst)  # Nexus's task finds it again after a restart

    # ----- helpers shared by the operations ---------------------------------------------------

    def set_disk_state(self, d: DiskRec, state: str, instance_id: str | None = None) -> None:
        d.state = state
        if state in ("detached", "creating", "faulted"):
            d.instance_id = None
        elif instance_id is not None:
            d.instance_id = instance_id
        d.gen += 1
        d.time_modified = now_iso()

    def set_run_state(self, inst: InstanceRec, state: str) -> None:
        inst.track_down_time(state, time.time())
        inst.run_state = state
        if state in DOWN_STATES:
            down = sum(i.run_state in DOWN_STATES for i in self.state.instances.values())
            self.most_down = max(self.most_down, down)
        inst.gen += 1
        ts = now_iso()
        inst.time_run_state_updated = ts
        inst.time_modified = ts

    def project(self, sel: NameOrId) -> ProjectRec:
        kind, value = sel
        for p in self.state.projects.values():
            if (kind == "id" and p.id == value) or (kind == "name" and p.name == value):
                return p
        raise not_found("project", kind, value)

    def _select(
        self,
        resource: str,
        sel: NameOrId,
        project: NameOrId | None,
        records: dict[str, Any],
    ) -> Any:
        """Nexus's selector rules: an id stands alone, a name needs its project."""
        kind, value = sel
        if kind == "id":
            if project is not None:
                raise invalid_request(
                    f"when providing {resource} as an ID project should not be specified"
                )
            rec = records.get(value)
            if rec is None:
                raise not_found(resource, "id", value)
            return rec
        if project is None:
            raise invalid_request(
                f"{resource} should either be UUID or project should be specified"
            )
        proj = self.project(project)
        for rec in records.values():
            if rec.project_id == proj.id and rec.name == value:
                return rec
        raise not_found(resource, "name", value)

    def disk(self, sel: NameOrId, project: NameOrId | None) -> DiskRec:
        rec: DiskRec = self._select("disk", sel, project, self.state.disks)
        return rec

    def instance(self, sel: NameOrId, project: NameOrId | None) -> InstanceRec:
        rec: InstanceRec = self._select("instance", sel, project, self.state.instances)
        return rec

    def snapshot(self, sel: NameOrId, project: NameOrId | None) -> SnapshotRec:
        rec: SnapshotRec = self._select("snapshot", sel, project, self.state.snapshots)
        return rec

    def instance_disks(self, inst: InstanceRec) -> list[DiskRec]:
        return [d for d in self.state.disks.values() if d.instance_id == inst.id]

    def provisioned_storage(self) -> int:
        return sum(d.size for d in self.state.disks.values()) + sum(
            s.size for s in self.state.snapshots.values()
        )

    # ----- instance hooks ---------------------------------------------------------------------

    def hook_lock(self, instance_id: str) -> threading.Lock:
        with self.lock:
            return self._hook_locks.setdefault(instance_id, threading.Lock())

    def _run_hooks(self, inst: InstanceRec, method: str, shown_state: str) -> None:
        """Call every hook's ``method``; exceptions propagate to the caller."""
        hooks = list(self.hooks)
        if not hooks:
            return
        view = instance_view(inst)
        view["run_state"] = shown_state
        disks = [disk_view(d) for d in self.instance_disks(inst)]
        for hook in hooks:
            fn: Callable[[dict[str, Any], list[dict[str, Any]]], None] = getattr(hook, method)
            fn(dict(view), [dict(d) for d in disks])

    def finish_transition(
        self, instance_id: str, gen: int, from_state: str, to_state: str, method: str
    ) -> None:
        """Complete starting->running or stopping->stopped, running the hooks first.

        The hooks run without the main lock (they may be slow), under a per-instance lock so a
        stop cannot overtake a start's hook. If the instance changed meanwhile (``gen``), the
        transition is stale and nothing happens. A failing ``before_running`` hook leaves the
        instance ``failed``, as a VMM that cannot boot would.
        """
        with self.hook_lock(instance_id):
            with self.lock:
                inst = self.state.instances.get(instance_id)
                if inst is None or inst.gen != gen or inst.run_state != from_state:
                    return
                hooks = list(self.hooks)
                view = instance_view(inst)
                view["run_state"] = "starting" if to_state == "running" else "stopped"
                disks = [disk_view(d) for d in self.instance_disks(inst)]
            outcome = to_state
            for hook in hooks:
                try:
                    getattr(hook, method)(dict(view), [dict(d) for d in disks])
                except Exception:
                    log.exception("instance hook %s failed for %s", method, view["name"])
                    if to_state == "running":
                        outcome = "failed"
                        break
            with self.lock:
                inst = self.state.instances.get(instance_id)
                if inst is None or inst.gen != gen or inst.run_state != from_state:
                    return
                self.set_run_state(inst, outcome)
                self.commit()
                if outcome == "failed":
                    schedule_restart(self, inst)
