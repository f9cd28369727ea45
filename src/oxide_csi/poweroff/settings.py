"""The node plugin's graceful power-off settings, resolved at start-up like the rest.

Plain data and the resolution of the node's flags; the controller's two settings (on/off and
the stop timeout) sit in ``ControllerSettings``. Kept apart from ``config.py`` because only a
node with graceful power-off on needs any of it.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from oxide_csi.config_common import ConfigError
from oxide_csi.poweroff.agent import BOOT_ID_FILE, DEFAULT_COMMAND

if TYPE_CHECKING:
    from oxide_csi.kube.settings import KubeSettings

#: How often a node plugin renews its heartbeat, and how long one counts as live (kubelet's
#: own node Lease uses the same 10 s / 40 s).
HEARTBEAT_PERIOD = 10.0
HEARTBEAT_DURATION = 40.0
#: ``--graceful-stop-timeout`` when not given: how long the controller waits for the guest.
DEFAULT_STOP_TIMEOUT = 120.0


@dataclass(frozen=True)
class GuestSettings:
    """What a node plugin needs to answer power-off requests for its instance."""

    #: The Oxide instance this node is (its DMI product UUID, or a UUID node id).
    instance_id: str
    #: File channel directory (``--state-backend file``); None with ``kube`` set.
    channel_dir: Path | None = None
    kube: KubeSettings | None = None
    heartbeat: bool = True
    handler: bool = True
    command: tuple[str, ...] = DEFAULT_COMMAND
    boot_id_file: Path = BOOT_ID_FILE
    #: Dev mode only: the guest's power-off in place of ``command``.
    action: Callable[[], None] | None = None
    heartbeat_period: float = HEARTBEAT_PERIOD
    heartbeat_duration: float = HEARTBEAT_DURATION


def power_off_command(raw: str | None) -> tuple[str, ...]:
    """``--power-off-command``: a command line (shell words, no shell), default systemd's."""
    if not raw:
        return DEFAULT_COMMAND
    try:
        words = tuple(shlex.split(raw))
    except ValueError as exc:
        raise ConfigError(f"power-off command cannot be parsed: {exc}") from None
    if not words:
        raise ConfigError("power-off command is empty")
    return words


def guest_settings(
    *,
    instance_id: str | None,
    state_dir: Path,
    kube: KubeSettings | None,
    heartbeat: bool,
    handler: bool,
    command: str | None,
    boot_id_file: str | None,
) -> GuestSettings:
    """The node's settings; fails at start when the node does not know its instance."""
    if not instance_id:
        raise ConfigError(
            "graceful power-off needs this node's instance UUID: none at "
            "/sys/class/dmi/id/product_uuid and the node id is not one"
        )
    return GuestSettings(
        instance_id=instance_id,
        channel_dir=None if kube is not None else state_dir / "poweroff",
        kube=kube,
        heartbeat=heartbeat,
        handler=handler,
        command=power_off_command(command),
        boot_id_file=Path(boot_id_file) if boot_id_file else BOOT_ID_FILE,
    )
