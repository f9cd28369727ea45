"""The simulator's records: plain dataclasses, persisted as JSON and rendered by ``views``.

They hold only what the simulated control plane needs; the API shapes (with their many constant
fields) are produced in ``views`` so the persisted file stays small and version-neutral.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, TypeVar


def now_iso() -> str:
    """Timestamps as Nexus prints them: RFC 3339, UTC, microseconds."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass
class ProjectRec:
    id: str
    name: str
    description: str
    time_created: str
    time_modified: str


@dataclass
class DiskRec:
    id: str
    name: str
    description: str
    project_id: str
    size: int
    block_size: int
    state: str  # creating | detached | attaching | attached | detaching | faulted
    time_created: str
    time_modified: str
    instance_id: str | None = None
    snapshot_id: str | None = None
    image_id: str | None = None
    read_only: bool = False
    disk_type: str = "distributed"  # distributed | local
    #: Bumped on every state change so a scheduled transition can tell it is stale.
    gen: int = 0


@dataclass
class SnapshotRec:
    id: str
    name: str
    description: str
    project_id: str
    disk_id: str
    size: int
    block_size: int
    state: str  # creating | ready | faulted
    time_created: str
    time_modified: str
    gen: int = 0


@dataclass
class ImageRec:
    """An image; ``project_id`` None makes it a silo image, visible in every project."""

    id: str
    name: str
    description: str
    project_id: str | None
    size: int
    block_size: int
    os: str
    version: str
    time_created: str
    time_modified: str
    snapshot_id: str | None = None


@dataclass
class InstanceRec:
    id: str
    name: str
    description: str
    project_id: str
    hostname: str
    ncpus: int
    memory: int
    run_state: str  # creating | starting | running | stopping | stopped | failed
    time_created: str
    time_modified: str
    time_run_state_updated: str
    boot_disk_id: str | None = None
    starts: int = 0
    #: Stops asked through the API that powered a VMM off (``hard_stops`` in /sim/stats).
    stops: int = 0
    #: Shutdowns the guest started itself (dev mode's node, via /sim/.../guest-power-off).
    guest_power_offs: int = 0
    #: Remaining starts to refuse with 507 (set via /sim/instances/{instance}/start-failures).
    start_failures: int = 0
    #: ``never``, ``best_effort`` or None (Nexus's default, best effort).
    auto_restart_policy: str | None = None
    #: What the user last asked for (Nexus's internal intended state): ``running`` after a
    #: start, ``stopped`` after a stop. Only a failed instance intended to run is restarted.
    intended_state: str = "running"
    time_last_auto_restarted: str | None = None
    auto_restart_cooldown_expiration: str | None = None
    #: Restarts the simulated control plane made on its own (not counted in ``starts``).
    auto_restarts: int = 0
    #: Hot-plug rack only: attaches/detaches accepted while running, and how many of the next
    #: hot attaches keep their device from the guest (set via /sim/.../hotplug-silent).
    hot_attaches: int = 0
    hot_detaches: int = 0
    hotplug_silent: int = 0
    #: Seconds spent not running, summed over the periods that have ended, and the wall clock
    #: (epoch seconds) at which the current one began (None while running): what a benchmark
    #: reads as "how long was this node down for its workloads" (``/sim/stats``).
    down_seconds: float = 0.0
    down_since: float | None = None
    gen: int = 0

    def track_down_time(self, new_state: str, now: float) -> None:
        """Close or open a period of not running as the instance moves to ``new_state``."""
        if new_state == "running":
            if self.down_since is not None:
                self.down_seconds += max(0.0, now - self.down_since)
                self.down_since = None
        elif self.down_since is None:
            self.down_since = now

    def seconds_down(self, now: float) -> float:
        """Every second not running so far, the current period included."""
        current = max(0.0, now - self.down_since) if self.down_since is not None else 0.0
        return self.down_seconds + current


@dataclass
class State:
    """Everything that persists; the lock lives in the engine, not here."""

    silo_id: str = field(default_factory=new_id)
    silo_name: str = "sim-silo"
    user_id: str = field(default_factory=new_id)
    time_created: str = field(default_factory=now_iso)
    projects: dict[str, ProjectRec] = field(default_factory=dict)
    disks: dict[str, DiskRec] = field(default_factory=dict)
    snapshots: dict[str, SnapshotRec] = field(default_factory=dict)
    instances: dict[str, InstanceRec] = field(default_factory=dict)
    images: dict[str, ImageRec] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": 1,
            "silo_id": self.silo_id,
            "silo_name": self.silo_name,
            "user_id": self.user_id,
            "time_created": self.time_created,
            "projects": [asdict(p) for p in self.projects.values()],
            "disks": [asdict(d) for d in self.disks.values()],
            "snapshots": [asdict(s) for s in self.snapshots.values()],
            "instances": [asdict(i) for i in self.instances.values()],
            "images": [asdict(m) for m in self.images.values()],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> State:
        st = cls(
            silo_id=data["silo_id"],
            silo_name=data.get("silo_name", "sim-silo"),
            user_id=data["user_id"],
            time_created=data.get("time_created", now_iso()),
        )
        for p in data.get("projects", []):
            rec = _load(ProjectRec, p)
            st.projects[rec.id] = rec
        for d in data.get("disks", []):
            drec = _load(DiskRec, d)
            st.disks[drec.id] = drec
        for s in data.get("snapshots", []):
            srec = _load(SnapshotRec, s)
            st.snapshots[srec.id] = srec
        for i in data.get("instances", []):
            irec = _load(InstanceRec, i)
            st.instances[irec.id] = irec
        for m in data.get("images", []):
            mrec = _load(ImageRec, m)
            st.images[mrec.id] = mrec
        return st


_T = TypeVar("_T")


def _load(cls: type[_T], data: dict[str, Any]) -> _T:
    """Build a record, ignoring unknown keys so an older simulator can read a newer file."""
    known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in known})
