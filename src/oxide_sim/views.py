"""Rendering of records into the JSON shapes of the Oxide OpenAPI document.

Kept apart from the rules so the shapes can be checked against the document in one place:
``Disk``, ``Snapshot``, ``Image``, ``Instance``, ``Project``, ``CurrentUser``; the played
release cuts them down to its shapes (:mod:`.releases`).
"""

from __future__ import annotations

from typing import Any

from oxide_sim.model import DiskRec, ImageRec, InstanceRec, ProjectRec, SnapshotRec, State, now_iso

#: Disk states whose JSON carries the instance id (``DiskState`` variants with ``instance``).
_STATES_WITH_INSTANCE = frozenset({"attaching", "attached", "detaching"})


def disk_view(d: DiskRec) -> dict[str, Any]:
    state: dict[str, Any] = {"state": d.state}
    if d.state in _STATES_WITH_INSTANCE and d.instance_id is not None:
        state["instance"] = d.instance_id
    return {
        "id": d.id,
        "name": d.name,
        "description": d.description,
        "project_id": d.project_id,
        "size": d.size,
        "block_size": d.block_size,
        "device_path": f"/mnt/{d.name}",
        "disk_type": d.disk_type,
        "image_id": d.image_id,
        "snapshot_id": d.snapshot_id,
        "read_only": d.read_only,
        "state": state,
        "time_created": d.time_created,
        "time_modified": d.time_modified,
    }


def snapshot_view(s: SnapshotRec) -> dict[str, Any]:
    return {
        "id": s.id,
        "name": s.name,
        "description": s.description,
        "project_id": s.project_id,
        "disk_id": s.disk_id,
        "size": s.size,
        "state": s.state,
        "time_created": s.time_created,
        "time_modified": s.time_modified,
    }


def image_view(m: ImageRec) -> dict[str, Any]:
    return {
        "id": m.id,
        "name": m.name,
        "description": m.description,
        "project_id": m.project_id,
        "size": m.size,
        "block_size": m.block_size,
        "os": m.os,
        "version": m.version,
        "digest": None,
        "time_created": m.time_created,
        "time_modified": m.time_modified,
    }


def instance_view(i: InstanceRec) -> dict[str, Any]:
    return {
        "id": i.id,
        "name": i.name,
        "description": i.description,
        "project_id": i.project_id,
        "hostname": i.hostname,
        "ncpus": i.ncpus,
        "memory": i.memory,
        "run_state": i.run_state,
        "boot_disk_id": i.boot_disk_id,
        "auto_restart_enabled": i.auto_restart_policy != "never",
        "auto_restart_policy": i.auto_restart_policy,
        "auto_restart_cooldown_expiration": _future_or_none(i.auto_restart_cooldown_expiration),
        "cpu_platform": None,
        "enable_jumbo_frames": False,
        "time_created": i.time_created,
        "time_modified": i.time_modified,
        "time_run_state_updated": i.time_run_state_updated,
        "time_last_auto_restarted": i.time_last_auto_restarted,
    }


def _future_or_none(timestamp: str | None) -> str | None:
    """Nexus shows the cooldown's end only while it lies ahead."""
    return timestamp if timestamp is not None and timestamp > now_iso() else None


def project_view(p: ProjectRec) -> dict[str, Any]:
    return {
        "id": p.id,
        "name": p.name,
        "description": p.description,
        "time_created": p.time_created,
        "time_modified": p.time_modified,
    }


def current_user_view(st: State) -> dict[str, Any]:
    return {
        "id": st.user_id,
        "display_name": "sim-user",
        "silo_id": st.silo_id,
        "silo_name": st.silo_name,
        "silo_admin": False,
        "fleet_viewer": False,
        "time_created": st.time_created,
        "time_modified": st.time_created,
    }
