"""What a cycle tells the rest of the controller: metrics, Events, the stop observer.

Kept apart from the worker (which runs the cycle) because the metrics and the Kubernetes Events
read these types without needing anything of how a cycle is run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from oxide_csi.controller.attach.records import AttachRecord, OpRecord


@dataclass(frozen=True)
class CycleReport:
    """What one cycle did, for metrics. ``batch_size`` counts the callers' operations the cycle
    took on; ``stopped``/``started`` say whether it powered the instance off or on;
    ``stopped_seconds`` is how long the instance was off on our account (from our stop request
    until it ran again), known once a start succeeds after a stop this process made."""

    instance_id: str
    batch_size: int
    stopped: bool
    started: bool
    stopped_seconds: float | None
    ok: bool
    instance_name: str = ""
    #: The batch's operations that succeeded (for Events on the Node and the PVCs).
    ops: tuple[OpRecord, ...] = ()


#: Called after every cycle that did something; must be quick and must not raise.
CycleObserver = Callable[[CycleReport], None]
#: Called with the record written right before the instance is stopped; quick, never raises.
StopObserver = Callable[[AttachRecord], None]


@dataclass
class CycleMeter:
    """What a cycle has done so far; becomes its :class:`CycleReport`."""

    batch_size: int = 0
    stopped: bool = False
    started: bool = False
    stopped_seconds: float | None = None
    ops: tuple[OpRecord, ...] = ()
