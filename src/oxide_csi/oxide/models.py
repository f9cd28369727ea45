"""Immutable views of the API's resources, parsed from its JSON.

Only the fields the plugin reads are kept; unknown fields are ignored so a newer rack that adds
fields does not break us. Fields the document marks required but that older racks (v18) lack are
optional here. A body missing a field we rely on raises ``OxideUnexpectedResponse`` at parse time,
close to the request that produced it, instead of a ``KeyError`` somewhere in the CSI layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from oxide_csi.oxide.api_errors import OxideUnexpectedResponse

#: Disk states in which ``DiskState`` carries the instance the disk belongs to.
_DISK_STATES_WITH_INSTANCE = frozenset({"attaching", "attached", "detaching"})


def _fail(kind: str, key: str, why: str) -> OxideUnexpectedResponse:
    return OxideUnexpectedResponse(f"malformed {kind} in response: field {key!r} {why}")


def _obj(value: Any, kind: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise OxideUnexpectedResponse(f"malformed {kind} in response: not a JSON object")
    return value


def _str(d: Mapping[str, Any], key: str, kind: str) -> str:
    value = d.get(key)
    if not isinstance(value, str):
        raise _fail(kind, key, "is missing or not a string")
    return value


def _opt_str(d: Mapping[str, Any], key: str, kind: str) -> str | None:
    value = d.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _fail(kind, key, "is not a string")
    return value


def _int(d: Mapping[str, Any], key: str, kind: str) -> int:
    value = d.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _fail(kind, key, "is missing or not an integer")
    return value


def _bool(d: Mapping[str, Any], key: str, kind: str, default: bool) -> bool:
    value = d.get(key, default)
    if not isinstance(value, bool):
        raise _fail(kind, key, "is not a boolean")
    return value


def _time(d: Mapping[str, Any], key: str, kind: str) -> datetime | None:
    raw = _opt_str(d, key, kind)
    if raw is None:
        return None
    try:
        return datetime.fromisoformat(raw)
    except ValueError:
        raise _fail(kind, key, "is not an RFC 3339 timestamp") from None


@dataclass(frozen=True)
class Disk:
    """A disk. ``state`` is the state name; ``instance_id`` is set while attaching/attached/
    detaching and names the instance the disk belongs to."""

    id: str
    name: str
    description: str
    project_id: str
    size: int
    block_size: int
    state: str
    instance_id: str | None
    device_path: str
    disk_type: str
    read_only: bool
    snapshot_id: str | None
    image_id: str | None
    time_created: datetime | None
    time_modified: datetime | None

    @classmethod
    def from_api(cls, raw: Any) -> Disk:
        kind = "Disk"
        d = _obj(raw, kind)
        state_obj = _obj(d.get("state"), "DiskState")
        state = _str(state_obj, "state", "DiskState")
        instance_id = _opt_str(state_obj, "instance", "DiskState")
        if state in _DISK_STATES_WITH_INSTANCE and instance_id is None:
            raise _fail("DiskState", "instance", f"is missing for state {state!r}")
        return cls(
            id=_str(d, "id", kind),
            name=_str(d, "name", kind),
            description=_opt_str(d, "description", kind) or "",
            project_id=_str(d, "project_id", kind),
            size=_int(d, "size", kind),
            block_size=_int(d, "block_size", kind),
            state=state,
            instance_id=instance_id if state in _DISK_STATES_WITH_INSTANCE else None,
            device_path=_opt_str(d, "device_path", kind) or "",
            disk_type=_opt_str(d, "disk_type", kind) or "distributed",
            read_only=_bool(d, "read_only", kind, False),
            snapshot_id=_opt_str(d, "snapshot_id", kind),
            image_id=_opt_str(d, "image_id", kind),
            time_created=_time(d, "time_created", kind),
            time_modified=_time(d, "time_modified", kind),
        )


@dataclass(frozen=True)
class Instance:
    """An instance. ``run_state`` is the state name (``running``, ``stopped``, ...)."""

    id: str
    name: str
    description: str
    project_id: str
    hostname: str
    ncpus: int
    memory: int
    run_state: str
    boot_disk_id: str | None
    time_run_state_updated: datetime | None
    time_created: datetime | None
    time_modified: datetime | None
    #: Whether the policy lets Oxide restart the instance by itself when it is ``failed``.
    auto_restart_enabled: bool = True
    auto_restart_policy: str | None = None
    #: While set, a failed instance waits until then before Oxide restarts it.
    auto_restart_cooldown_expiration: datetime | None = None
    time_last_auto_restarted: datetime | None = None

    def restarts_by_itself(self, before: datetime | None = None) -> bool:
        """Whether Oxide will restart this ``failed`` instance on its own (and, given
        ``before``, no later than that). The API does not show the intended state Oxide also
        requires (running, not stopped): a failed instance is one whose VMM died while meant
        to run, in all but the rare case of a failure during a stop."""
        if self.run_state != "failed" or not self.auto_restart_enabled:
            return False
        cooldown = self.auto_restart_cooldown_expiration
        return before is None or cooldown is None or cooldown <= before

    @classmethod
    def from_api(cls, raw: Any) -> Instance:
        kind = "Instance"
        d = _obj(raw, kind)
        return cls(
            id=_str(d, "id", kind),
            name=_str(d, "name", kind),
            description=_opt_str(d, "description", kind) or "",
            project_id=_str(d, "project_id", kind),
            hostname=_opt_str(d, "hostname", kind) or "",
            ncpus=_int(d, "ncpus", kind),
            memory=_int(d, "memory", kind),
            run_state=_str(d, "run_state", kind),
            boot_disk_id=_opt_str(d, "boot_disk_id", kind),
            time_run_state_updated=_time(d, "time_run_state_updated", kind),
            time_created=_time(d, "time_created", kind),
            time_modified=_time(d, "time_modified", kind),
            auto_restart_enabled=_bool(d, "auto_restart_enabled", kind, True),
            auto_restart_policy=_opt_str(d, "auto_restart_policy", kind),
            auto_restart_cooldown_expiration=_time(d, "auto_restart_cooldown_expiration", kind),
            time_last_auto_restarted=_time(d, "time_last_auto_restarted", kind),
        )


@dataclass(frozen=True)
class Snapshot:
    """A snapshot of a disk; ``state`` is ``creating``, ``ready``, ``faulted`` or ``destroyed``."""

    id: str
    name: str
    description: str
    project_id: str
    disk_id: str
    size: int
    state: str
    time_created: datetime | None
    time_modified: datetime | None

    @classmethod
    def from_api(cls, raw: Any) -> Snapshot:
        kind = "Snapshot"
        d = _obj(raw, kind)
        return cls(
            id=_str(d, "id", kind),
            name=_str(d, "name", kind),
            description=_opt_str(d, "description", kind) or "",
            project_id=_str(d, "project_id", kind),
            disk_id=_str(d, "disk_id", kind),
            size=_int(d, "size", kind),
            state=_str(d, "state", kind),
            time_created=_time(d, "time_created", kind),
            time_modified=_time(d, "time_modified", kind),
        )


@dataclass(frozen=True)
class Image:
    """An image; ``project_id`` is None for a silo-wide image."""

    id: str
    name: str
    description: str
    project_id: str | None
    size: int
    block_size: int
    os: str
    version: str
    time_created: datetime | None
    time_modified: datetime | None

    @classmethod
    def from_api(cls, raw: Any) -> Image:
        kind = "Image"
        d = _obj(raw, kind)
        return cls(
            id=_str(d, "id", kind),
            name=_str(d, "name", kind),
            description=_opt_str(d, "description", kind) or "",
            project_id=_opt_str(d, "project_id", kind),
            size=_int(d, "size", kind),
            block_size=_int(d, "block_size", kind),
            os=_opt_str(d, "os", kind) or "",
            version=_opt_str(d, "version", kind) or "",
            time_created=_time(d, "time_created", kind),
            time_modified=_time(d, "time_modified", kind),
        )


@dataclass(frozen=True)
class Project:
    id: str
    name: str
    description: str
    time_created: datetime | None
    time_modified: datetime | None

    @classmethod
    def from_api(cls, raw: Any) -> Project:
        kind = "Project"
        d = _obj(raw, kind)
        return cls(
            id=_str(d, "id", kind),
            name=_str(d, "name", kind),
            description=_opt_str(d, "description", kind) or "",
            time_created=_time(d, "time_created", kind),
            time_modified=_time(d, "time_modified", kind),
        )


@dataclass(frozen=True)
class Utilization:
    """The silo's storage capacity and what is provisioned of it, in bytes (for GetCapacity)."""

    storage_capacity: int
    storage_provisioned: int

    @property
    def storage_available(self) -> int:
        return max(0, self.storage_capacity - self.storage_provisioned)

    @classmethod
    def from_api(cls, raw: Any) -> Utilization:
        d = _obj(raw, "Utilization")
        capacity = _obj(d.get("capacity"), "Utilization.capacity")
        provisioned = _obj(d.get("provisioned"), "Utilization.provisioned")
        return cls(
            storage_capacity=_int(capacity, "storage", "Utilization.capacity"),
            storage_provisioned=_int(provisioned, "storage", "Utilization.provisioned"),
        )
