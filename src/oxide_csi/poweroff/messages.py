"""What travels between the controller and a node plugin, and when a node may act on it.

Why each field of a request: a power-off request is dangerous if it is ever acted on again. A
controller that died after writing one leaves it behind; the node reboots; a naive node plugin
would read it and power the node off again, and again. So the controller copies into the
request the node plugin's identity exactly as it read it from that plugin's live heartbeat --
the host's boot id and the plugin's own start -- and the node acts only on a request carrying
*its current boot and its own start*, for *its instance*, *before the expiry*. After a reboot
the boot id differs; after a plugin restart the start differs; either way an old request is
dead. ``run`` (Oxide's ``time_run_state_updated`` of the running instance, as the controller
read it) names the run the request is about, for logs and for anyone reading leftovers.

Times are wall-clock seconds since the epoch (the two sides share nothing else); a node's
heartbeat counts as live until ``renewed + duration``.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

#: Tolerance when comparing a start time that went through text (JSON, annotations).
_SAME_INSTANT = 1e-6


class MessageError(ValueError):
    """A stored heartbeat or request cannot be parsed; it is ignored, never guessed at."""


@dataclass(frozen=True)
class Heartbeat:
    """A node plugin's sign of life, with the identity a request must name."""

    instance_id: str
    boot_id: str
    #: When this node plugin process started (seconds since the epoch).
    started: float
    #: When the heartbeat was last written.
    renewed: float
    #: Seconds the heartbeat counts as live after ``renewed``.
    duration: float

    def live(self, now: float) -> bool:
        return now < self.renewed + self.duration

    def to_json(self) -> dict[str, Any]:
        return {
            "instance_id": self.instance_id,
            "boot_id": self.boot_id,
            "started": self.started,
            "renewed": self.renewed,
            "duration": self.duration,
        }

    @classmethod
    def from_json(cls, raw: Any) -> Heartbeat:
        data = _object(raw, "heartbeat")
        return cls(
            instance_id=_text(data, "instance_id"),
            boot_id=_text(data, "boot_id"),
            started=_number(data, "started"),
            renewed=_number(data, "renewed"),
            duration=_number(data, "duration"),
        )


@dataclass(frozen=True)
class PowerOffRequest:
    """The controller's request that one node plugin power its host off, once."""

    instance_id: str
    #: Oxide's ``time_run_state_updated`` of the running instance (RFC 3339), as read.
    run: str
    #: The node plugin's identity, copied from its live heartbeat.
    boot_id: str
    node_started: float
    issued: float
    expires: float
    #: Who asked (the controller's identity), for logs.
    issuer: str = ""
    id: str = field(default_factory=lambda: uuid.uuid4().hex)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "instance_id": self.instance_id,
            "run": self.run,
            "boot_id": self.boot_id,
            "node_started": self.node_started,
            "issued": self.issued,
            "expires": self.expires,
            "issuer": self.issuer,
        }

    @classmethod
    def from_json(cls, raw: Any) -> PowerOffRequest:
        data = _object(raw, "power-off request")
        return cls(
            id=_text(data, "id"),
            instance_id=_text(data, "instance_id"),
            run=_text(data, "run"),
            boot_id=_text(data, "boot_id"),
            node_started=_number(data, "node_started"),
            issued=_number(data, "issued"),
            expires=_number(data, "expires"),
            issuer=str(data.get("issuer", "")),
        )


@dataclass(frozen=True)
class NodeSelf:
    """What a node plugin knows of itself when a request arrives."""

    instance_id: str
    boot_id: str
    started: float


def refusal(request: PowerOffRequest, me: NodeSelf, now: float) -> str | None:
    """Why the node must not act on ``request``; None when it must.

    Checked in this order so the log names the most telling reason.
    """
    if request.instance_id != me.instance_id:
        return "it is for another instance"
    if request.boot_id != me.boot_id:
        return "it is for another boot of this host"
    if not math.isclose(request.node_started, me.started, rel_tol=0, abs_tol=_SAME_INSTANT):
        return "it is for another start of this node plugin"
    if now >= request.expires:
        return "it has expired"
    return None


class ControllerChannel(Protocol):
    """The controller's side of a channel."""

    async def heartbeat(self, instance_id: str) -> Heartbeat | None:
        """The instance's node plugin heartbeat as stored (live or not); None: never seen."""
        ...

    async def send(self, request: PowerOffRequest) -> None:
        """Store the request durably (replacing any older one for the instance)."""
        ...

    async def withdraw(self, request: PowerOffRequest) -> None:
        """Remove the request, if it is still the stored one for its instance."""
        ...

    async def sweep(self, now: float) -> int:
        """Remove requests expired at ``now`` (leftovers of a controller that died)."""
        ...


class NodeChannel(Protocol):
    """The node plugin's side of a channel."""

    async def beat(self, heartbeat: Heartbeat) -> None:
        """Write the heartbeat (create or renew)."""
        ...

    def requests(self, instance_id: str) -> AsyncIterator[PowerOffRequest]:
        """Requests for the instance, as they are written (and once at the start)."""
        ...

    async def close(self) -> None: ...


def _object(raw: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(raw, Mapping):
        raise MessageError(f"{what} is not an object")
    return raw


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise MessageError(f"field {key!r} must be a non-empty string")
    return value


def _number(data: Mapping[str, Any], key: str) -> float:
    value = data.get(key)
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise MessageError(f"field {key!r} must be a number") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise MessageError(f"field {key!r} must be a number")
    return float(value)
