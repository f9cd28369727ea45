"""Configuration of the simulated Oxide API.

Two small dataclasses: ``FaultConfig`` (what the fault injector does, also settable at runtime via
``PUT /sim/faults``) and ``SimConfig`` (everything fixed at start). Durations are short by default
so tests stay fast; a benchmark or dev-mode run passes realistic ones.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from oxide_sim.releases import NEWEST, Release, release

#: Environment variable that enables the traffic log when ``SimConfig.traffic_log`` is None.
TRAFFIC_LOG_ENV = "OXIDE_SIM_TRAFFIC_LOG"

FAULT_PHASES = ("before", "after", "random")


@dataclass
class FaultConfig:
    """Injected failures for /v1 requests.

    ``phase`` says whether an injected error or drop happens *before* the request takes effect
    (nothing changed) or *after* it did (the change happened but the client never learns it);
    "random" picks one of the two per injected fault. ``path_regex`` restricts injection to
    request paths matching it (``re.search`` on the path, e.g. ``"/disks"``).
    """

    error_rate: float = 0.0
    error_statuses: list[int] = field(default_factory=lambda: [500, 503])
    rate_limit_rate: float = 0.0
    latency_ms: int = 0
    latency_rate: float = 0.0
    drop_rate: float = 0.0
    phase: str = "before"
    path_regex: str | None = None
    seed: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "error_rate": self.error_rate,
            "error_statuses": list(self.error_statuses),
            "rate_limit_rate": self.rate_limit_rate,
            "latency_ms": self.latency_ms,
            "latency_rate": self.latency_rate,
            "drop_rate": self.drop_rate,
            "phase": self.phase,
            "path_regex": self.path_regex,
            "seed": self.seed,
        }


@dataclass
class SimConfig:
    """Everything the simulator needs at start.

    ``instances`` running instances (named ``instance-N`` unless ``instance_names`` is given),
    each with a 20 GiB boot disk, are created in ``project`` at first boot. ``state_dir`` keeps
    state across restarts (in memory if None). The ``*_seconds`` durations are those of the
    asynchronous transitions; ``traffic_log`` (or ``$OXIDE_SIM_TRAFFIC_LOG``) records every
    /v1 exchange for the OpenAPI conformance check.
    """

    #: Only ever a simulator credential; the CLI makes the operator choose one.
    token: str = "secret-token"  # noqa: S105
    project: str = "default"
    instances: int = 2
    instance_names: list[str] | None = None
    #: More projects, each seeded with one running instance ``NAME-0`` and its boot disk: what
    #: another team's project on the same rack looks like to a plugin (which must leave it be).
    extra_projects: list[str] = field(default_factory=list)
    state_dir: Path | None = None
    listen: tuple[str, int] = ("127.0.0.1", 0)
    stop_seconds: float = 0.05
    start_seconds: float = 0.05
    disk_create_seconds: float = 0.0
    snapshot_create_seconds: float = 0.0
    #: 0 (the default) attaches and detaches at once, as Nexus does for a stopped instance;
    #: more shows ``attaching``/``detaching`` for that long, as a slower control plane would.
    attach_seconds: float = 0.0
    #: How soon after an instance fails the control plane restarts it (Nexus's reincarnation
    #: task runs every 60 s), if its policy allows and its cooldown has passed.
    auto_restart_seconds: float = 60.0
    #: Nexus's default cooldown between two automatic restarts of one instance.
    auto_restart_cooldown_seconds: float = 3600.0
    #: The Oxide release played (15..22): API version rules, shapes and the slot limit.
    release: int = NEWEST
    #: Disks per instance (boot disk counted); None: the release's (8 up to v17, 12 since).
    max_disks_per_instance: int | None = None
    #: A hot-plug rack (see ``oxide_sim.hotplug``): attach and detach accepted while running.
    hotplug: bool = False
    #: Newest api-version accepted by a versioned release; None: the release's own.
    max_api_version: str | None = None
    traffic_log: Path | None = None
    disk_data_dir: Path | None = None
    faults: FaultConfig = field(default_factory=FaultConfig)
    #: Silo storage capacity reported by /v1/utilization; disk and snapshot creation beyond it
    #: fails with 507 like a full rack.
    storage_capacity: int = 100 * 2**40

    def __repr__(self) -> str:
        # The token is a secret: never let it reach a log line or a test failure message.
        return (
            f"SimConfig(project={self.project!r}, instances={self.instances}, "
            f"listen={self.listen!r}, state_dir={self.state_dir!r}, token=<redacted>)"
        )

    @property
    def played(self) -> Release:
        return release(self.release)

    @property
    def slot_limit(self) -> int:
        if self.max_disks_per_instance is not None:
            return self.max_disks_per_instance
        return self.played.max_disks

    @property
    def newest_api_version(self) -> str | None:
        """The newest api-version honoured; None when the release ignores the header."""
        if not self.played.versioned:
            return None
        return self.max_api_version or self.played.api_version

    def resolved_instance_names(self) -> list[str]:
        if self.instance_names is not None:
            return list(self.instance_names)
        return [f"instance-{i}" for i in range(self.instances)]

    def resolved_traffic_log(self) -> Path | None:
        if self.traffic_log is not None:
            return Path(self.traffic_log)
        env = os.environ.get(TRAFFIC_LOG_ENV)
        return Path(env) if env else None
