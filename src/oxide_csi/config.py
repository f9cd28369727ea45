"""The plugin's configuration, resolved once at start-up from flags and environment.

Why resolve everything up front: a misconfigured plugin must fail at start with one line that
names what is missing (exit code 2), not minutes later on the first CreateVolume. Each setting has
a flag and an environment variable; the flag wins.
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from oxide_csi.config_common import API_VERSION_PATTERN, DEFAULT_API_VERSION, ConfigError
from oxide_csi.credentials import CredentialsError, OxideCredentials, resolve_credentials
from oxide_csi.endpoint import Endpoint, EndpointError, parse_endpoint

if TYPE_CHECKING:
    from oxide_csi.kube.settings import KubeSettings
    from oxide_csi.poweroff.settings import GuestSettings

#: The node's disk slots per instance, boot disk included, when no flag says otherwise. The
#: node holds no credentials and cannot ask the rack: 8 fits every release (v17 and older allow
#: 8, v18 on 12); a cluster on v18+ racks passes 12. The controller asks the rack instead (see
#: :mod:`oxide_csi.controller.slots`); the flag can only lower what the rack allows.
DEFAULT_MAX_DISKS = 8
#: Oxide's hard limit of disks per instance today (v18+, boot disk counted): a setting above it
#: would let the controller power an instance off for an attach Oxide is bound to refuse.
OXIDE_MAX_DISKS = 12
#: How long one attach cycle (stop, apply, start with its retries after 507) may take; the
#: chart's terminationGracePeriodSeconds is derived from it, since SIGTERM lets a cycle that
#: has stopped its instance run on until the instance is started again.
DEFAULT_CYCLE_TIMEOUT = 600.0
#: ``--deferred-delete-alert-after``: a deleted claim's disk waiting a day for its instance's
#: next cycle deserves a look (release-instance in a maintenance window).
DEFAULT_DELETE_ALERT_AFTER = 86400.0
DETACH_POLICIES = ("deferred", "immediate")
#: ``--controller-instance-id`` value that turns the self power-off guard off.
GUARD_OFF = "none"
DEFAULT_KUBELET_DIR = Path("/var/lib/kubelet")
DEFAULT_ENDPOINT = "unix:///csi/csi.sock"

_NAME_RE = re.compile(r"^[a-z](|[a-z0-9-]*[a-z0-9])$")


class Mode(StrEnum):
    CONTROLLER = "controller"
    NODE = "node"
    ALL = "all"

    @property
    def runs_controller(self) -> bool:
        return self in (Mode.CONTROLLER, Mode.ALL)

    @property
    def runs_node(self) -> bool:
        return self in (Mode.NODE, Mode.ALL)


@dataclass(frozen=True)
class OxideSettings:
    """What the controller needs to reach the Oxide API."""

    credentials: OxideCredentials
    project: str
    api_version: str = DEFAULT_API_VERSION
    #: One attempt of one Oxide call at most; also the margin of a Lease takeover.
    request_timeout: float = 30.0
    #: CA bundle (PEM) trusted besides the system's, for a rack with a private CA.
    ca_file: Path | None = None


@dataclass(frozen=True)
class NodeSettings:
    node_id: str
    kubelet_dir: Path = DEFAULT_KUBELET_DIR
    max_disks_per_instance: int = DEFAULT_MAX_DISKS
    #: Dev mode only: the directory whose files back the simulated instance's loop devices.
    #: Set, the node sees exactly those loop devices as its disks; unset, NVMe disks only.
    loop_device_dir: Path | None = None
    #: False on nodes that must never be power-cycled (control plane): volumes stay off them.
    attachable: bool = True
    #: Set with ``--graceful-power-off``: the heartbeat and power-off handler (``poweroff``).
    guest: GuestSettings | None = None


@dataclass(frozen=True)
class ControllerSettings:
    #: None: the rack's own limit (8 up to release v17, 12 since); a number can only lower it.
    max_disks_per_instance: int | None = None
    state_dir: Path = Path("/var/lib/oxide-csi")
    #: How long the attach coordinator waits for more work before stopping an instance.
    batch_window: float = 2.0
    #: Try attach/detach on the running instance first (a hot-plug rack); off by default.
    hot_attach: bool = False
    #: How long a hot-attached disk's device may take to appear in the guest before a
    #: re-publish repairs it with a power cycle (see ``controller/attach/hot.py``).
    hot_attach_timeout: float = 60.0
    #: The instance this controller runs on (lower-case UUID), which it must never power off;
    #: None only when the operator turned the guard off (``--controller-instance-id=none``).
    #: Configuration resolution fails closed, this default is for in-process callers.
    controller_instance_id: str | None = None
    #: Bound of one attach cycle, start retries included (see ``DEFAULT_CYCLE_TIMEOUT``).
    cycle_timeout: float = DEFAULT_CYCLE_TIMEOUT
    #: Set: state in Kubernetes (``--state-backend kubernetes``); None: files in state_dir.
    kube: KubeSettings | None = None
    #: Ask the node plugin to power its host off before Oxide's hard stop (``graceful.py``),
    #: and how long to wait for it.
    graceful_power_off: bool = False
    graceful_stop_timeout: float = 120.0
    #: ``deferred``: an unpublished disk stays attached until its instance cycles anyway
    #: (``controller/attach/released.py``); ``immediate``: every unpublish is a cycle.
    detach_policy: str = "deferred"
    #: Seconds an owed deletion may wait before a Warning Event and the alert say so.
    deferred_delete_alert_after: float = DEFAULT_DELETE_ALERT_AFTER


@dataclass(frozen=True)
class MetricsAddress:
    """Where the Prometheus endpoint listens (``/metrics``); absent means no endpoint."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class ServeConfig:
    mode: Mode
    endpoint: Endpoint
    shutdown_grace: float
    oxide: OxideSettings | None
    node: NodeSettings | None
    controller: ControllerSettings | None
    metrics: MetricsAddress | None = None


def is_valid_name(text: str) -> bool:
    """The Oxide ``Name`` rule as Nexus enforces it (lower case only), 1..63 characters."""
    return len(text) <= 63 and bool(_NAME_RE.match(text))


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _pick(flag: object, env: Mapping[str, str], *names: str) -> str | None:
    if isinstance(flag, str) and flag:
        return flag
    for name in names:
        if env.get(name):
            return env[name]
    return None


def _int_setting(raw: str | None, what: str, default: int, low: int, high: int) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{what} must be a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{what} must be between {low} and {high}, got {value}")
    return value


def _true_or_false(raw: str | None, what: str, default: bool) -> bool:
    """A boolean setting's text (true/false, 1/0, yes/no, on/off); absent or empty: default."""
    value = (raw or "").strip().lower()
    if not value:
        return default
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{what} must be true or false, got {raw!r}")


def _float_setting(raw: str | None, what: str, default: float, high: float) -> float:
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{what} must be a number, got {raw!r}") from None
    if not 0 <= value <= high:
        raise ConfigError(f"{what} must be between 0 and {high}, got {raw!r}")
    return value


def _bool_setting(flag: object, env: Mapping[str, str], name: str) -> bool:
    """A switch: the flag given (True), else the environment's true/false, else off."""
    if flag is True:
        return True
    return _true_or_false(flag if isinstance(flag, str) and flag else env.get(name), name, False)


def parse_metrics_address(raw: str | None) -> MetricsAddress | None:
    """``HOST:PORT`` or ``[V6]:PORT``; empty or absent turns the endpoint off."""
    if not raw:
        return None
    host, sep, port = raw.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ConfigError(
            f"metrics address must look like HOST:PORT (e.g. 0.0.0.0:9809), got {raw!r}"
        )
    return MetricsAddress(host=host, port=int(port))


def read_product_uuid(sys_root: Path = Path("/sys")) -> str | None:
    """The instance UUID the hypervisor puts in DMI: a node id that needs no credentials."""
    try:
        text = (sys_root / "class/dmi/id/product_uuid").read_text().strip().lower()
    except OSError:
        return None
    return text if _is_uuid(text) else None


def controller_instance_id(raw: str | None, sys_root: Path) -> str | None:
    """The instance the controller must never power off: the flag or variable, else DMI.

    Fails closed: with neither an id nor a readable ``product_uuid`` (not root, no DMI, a
    container without /sys) the controller does not start, because a controller that does not
    know where it runs may stop its own instance mid-cycle and strand it (nobody is left to
    start it again). ``none`` is the operator's explicit "I know": None is returned.
    """
    if raw is not None:
        text = raw.strip().lower()
        if text == GUARD_OFF:
            return None
        if not _is_uuid(text):
            raise ConfigError(
                f"controller instance id must be the instance's UUID or {GUARD_OFF!r}, got {raw!r}"
            )
        return str(uuid.UUID(text))
    found = read_product_uuid(sys_root)
    if found is None:
        raise ConfigError(
            f"controller instance unknown: cannot read {sys_root}/class/dmi/id/product_uuid "
            "(root needed); pass --controller-instance-id=<UUID of the instance this runs on> "
            f"(OXIDE_CSI_CONTROLLER_INSTANCE_ID), or {GUARD_OFF!r} to turn the guard off"
        )
    return found


def oxide_settings(
    env: Mapping[str, str],
    host: str | None = None,
    token: str | None = None,
    profile: str | None = None,
    project: str | None = None,
    api_version: str | None = None,
    ca_file: str | None = None,
) -> OxideSettings:
    try:
        creds = resolve_credentials(env, host=host, token=token, profile=profile)
    except CredentialsError as exc:
        raise ConfigError(str(exc)) from None
    project = project or env.get("OXIDE_PROJECT")
    if not project:
        raise ConfigError("OXIDE_PROJECT is not set (the Oxide project that holds the disks)")
    if not (is_valid_name(project) or _is_uuid(project)):
        raise ConfigError(f"OXIDE_PROJECT must be an Oxide name or UUID, got {project!r}")
    version = api_version or env.get("OXIDE_API_VERSION") or DEFAULT_API_VERSION
    if not API_VERSION_PATTERN.match(version):
        raise ConfigError(f"OXIDE_API_VERSION must look like 2026021301.0.0, got {version!r}")
    ca = ca_file or env.get("OXIDE_CA_FILE")
    if ca and not Path(ca).is_file():
        raise ConfigError(f"OXIDE_CA_FILE {ca!r} is not a readable file")
    return OxideSettings(
        credentials=creds,
        project=project,
        api_version=version,
        ca_file=Path(ca) if ca else None,
    )


def build_serve_config(
    args: Mapping[str, object], env: Mapping[str, str], sys_root: Path = Path("/sys")
) -> ServeConfig:
    """Turn parsed flags (as a mapping) and the environment into a :class:`ServeConfig`."""
    raw_mode = _pick(args.get("mode"), env, "CSI_MODE") or "all"
    try:
        mode = Mode(raw_mode)
    except ValueError:
        raise ConfigError(f"mode must be controller, node or all, got {raw_mode!r}") from None
    raw_endpoint = _pick(args.get("endpoint"), env, "CSI_ENDPOINT") or DEFAULT_ENDPOINT
    try:
        endpoint = parse_endpoint(raw_endpoint)
    except EndpointError as exc:
        raise ConfigError(str(exc)) from None
    raw_max_disks = _pick(args.get("max_disks_per_instance"), env, "OXIDE_MAX_DISKS_PER_INSTANCE")
    max_disks = _int_setting(
        raw_max_disks, "max disks per instance", DEFAULT_MAX_DISKS, 2, OXIDE_MAX_DISKS
    )
    grace_raw = _pick(args.get("shutdown_grace"), env, "CSI_SHUTDOWN_GRACE")
    grace = float(_int_setting(grace_raw, "shutdown grace (seconds)", 30, 0, 3600))

    oxide = controller = node = None
    if mode.runs_controller:
        oxide = oxide_settings(
            env,
            host=_pick(args.get("oxide_host"), env),
            token=_pick(args.get("oxide_token"), env),
            profile=_pick(args.get("oxide_profile"), env),
            project=_pick(args.get("oxide_project"), env),
            api_version=_pick(args.get("api_version"), env),
            ca_file=_pick(args.get("oxide_ca_file"), env),
        )
        request_timeout = _float_setting(
            _pick(args.get("oxide_request_timeout"), env, "OXIDE_CSI_OXIDE_REQUEST_TIMEOUT"),
            "Oxide request timeout (seconds)",
            OxideSettings.request_timeout,
            600,
        )
        if request_timeout <= 0:
            raise ConfigError("Oxide request timeout must be positive")
        oxide = dataclasses.replace(oxide, request_timeout=request_timeout)
        state_dir = _pick(args.get("state_dir"), env, "OXIDE_CSI_STATE_DIR")
        window_raw = _pick(args.get("attach_batch_window"), env, "OXIDE_CSI_ATTACH_BATCH_WINDOW")
        cycle_raw = _pick(args.get("attach_cycle_timeout"), env, "OXIDE_CSI_ATTACH_CYCLE_TIMEOUT")
        own = _pick(args.get("controller_instance_id"), env, "OXIDE_CSI_CONTROLLER_INSTANCE_ID")
        controller = ControllerSettings(
            max_disks_per_instance=max_disks if raw_max_disks is not None else None,
            state_dir=Path(state_dir) if state_dir else ControllerSettings.state_dir,
            batch_window=_float_setting(
                window_raw, "attach batch window (seconds)", ControllerSettings.batch_window, 60
            ),
            hot_attach=_bool_setting(args.get("hot_attach"), env, "OXIDE_CSI_HOT_ATTACH"),
            hot_attach_timeout=_float_setting(
                _pick(args.get("hot_attach_timeout"), env, "OXIDE_CSI_HOT_ATTACH_TIMEOUT"),
                "hot attach timeout (seconds)",
                ControllerSettings.hot_attach_timeout,
                3600,
            ),
            controller_instance_id=controller_instance_id(own, sys_root),
            cycle_timeout=float(
                _int_setting(
                    cycle_raw,
                    "attach cycle timeout (seconds)",
                    int(DEFAULT_CYCLE_TIMEOUT),
                    30,
                    3600,
                )
            ),
            kube=_kube_settings(args, env, request_timeout),
            graceful_power_off=_bool_setting(
                args.get("graceful_power_off"), env, "OXIDE_CSI_GRACEFUL_POWER_OFF"
            ),
            graceful_stop_timeout=_float_setting(
                _pick(args.get("graceful_stop_timeout"), env, "OXIDE_CSI_GRACEFUL_STOP_TIMEOUT"),
                "graceful stop timeout (seconds)",
                ControllerSettings.graceful_stop_timeout,
                3600,
            ),
            detach_policy=_detach_policy(args, env),
            deferred_delete_alert_after=_float_setting(
                _pick(
                    args.get("deferred_delete_alert_after"),
                    env,
                    "OXIDE_CSI_DEFERRED_DELETE_ALERT_AFTER",
                ),
                "deferred delete alert after (seconds)",
                DEFAULT_DELETE_ALERT_AFTER,
                365 * 86400,
            ),
        )
    if mode.runs_node:
        node_id = _pick(args.get("node_id"), env, "CSI_NODE_ID", "KUBE_NODE_NAME")
        node_id = node_id or read_product_uuid(sys_root)
        if not node_id:
            raise ConfigError(
                "node id unknown: pass --node-id or set CSI_NODE_ID / KUBE_NODE_NAME "
                "(no instance UUID at /sys/class/dmi/id/product_uuid)"
            )
        kubelet = _pick(args.get("kubelet_dir"), env, "KUBELET_DIR")
        kubelet_dir = Path(kubelet) if kubelet else DEFAULT_KUBELET_DIR
        if not kubelet_dir.is_absolute():
            raise ConfigError(f"kubelet dir must be absolute, got {kubelet_dir}")
        # Dev mode and tests only: loop devices backed by files in this directory are taken as
        # this node's disks (their file names being the disks' serials). Unset on a real node.
        loop_dir = env.get("OXIDE_CSI_LOOP_DEVICE_DIR")
        node = NodeSettings(
            node_id=node_id,
            kubelet_dir=kubelet_dir,
            max_disks_per_instance=max_disks,
            loop_device_dir=Path(loop_dir) if loop_dir else None,
            attachable=_true_or_false(
                _pick(args.get("attachable"), env, "OXIDE_CSI_ATTACHABLE"), "attachable", True
            ),
            guest=_guest_settings(args, env, node_id, sys_root, controller),
        )
    return ServeConfig(
        mode=mode,
        endpoint=endpoint,
        shutdown_grace=grace,
        oxide=oxide,
        node=node,
        controller=controller,
        metrics=parse_metrics_address(
            _pick(args.get("metrics_address"), env, "OXIDE_CSI_METRICS_ADDRESS")
        ),
    )


def _detach_policy(args: Mapping[str, object], env: Mapping[str, str]) -> str:
    raw = _pick(args.get("detach_policy"), env, "OXIDE_CSI_DETACH_POLICY") or "deferred"
    if raw not in DETACH_POLICIES:
        raise ConfigError(f"detach policy must be deferred or immediate, got {raw!r}")
    return raw


def _kube_settings(
    args: Mapping[str, object], env: Mapping[str, str], oxide_call: float
) -> KubeSettings | None:
    """The Kubernetes state settings, or None for ``--state-backend file`` (the default)."""
    from oxide_csi.kube.settings import KubeSettingsError, StateBackend, kube_settings

    raw = _pick(args.get("state_backend"), env, "OXIDE_CSI_STATE_BACKEND") or "file"
    try:
        backend = StateBackend(raw)
    except ValueError:
        raise ConfigError(f"state backend must be kubernetes or file, got {raw!r}") from None
    if backend is StateBackend.FILE:
        return None
    try:
        return kube_settings(
            namespace=_pick(args.get("namespace"), env),
            kubeconfig=_pick(args.get("kubeconfig"), env),
            lease_seconds=_pick(args.get("lease_duration"), env, "OXIDE_CSI_LEASE_DURATION"),
            oxide_call_seconds=oxide_call,
            env=env,
        )
    except KubeSettingsError as exc:
        raise ConfigError(str(exc)) from None


def _guest_settings(
    args: Mapping[str, object],
    env: Mapping[str, str],
    node_id: str,
    sys_root: Path,
    controller: ControllerSettings | None,
) -> GuestSettings | None:
    """The node's graceful power-off settings, or None when it is off (the default)."""
    if not _bool_setting(args.get("graceful_power_off"), env, "OXIDE_CSI_GRACEFUL_POWER_OFF"):
        return None
    from oxide_csi.poweroff.settings import guest_settings

    state_dir = _pick(args.get("state_dir"), env, "OXIDE_CSI_STATE_DIR")
    kube = controller.kube if controller is not None else _kube_settings(args, env, 30.0)
    return guest_settings(
        instance_id=node_id.lower() if _is_uuid(node_id) else read_product_uuid(sys_root),
        state_dir=Path(state_dir) if state_dir else ControllerSettings.state_dir,
        kube=kube,
        heartbeat=_true_or_false(
            _pick(args.get("power_off_heartbeat"), env, "OXIDE_CSI_POWER_OFF_HEARTBEAT"),
            "power-off heartbeat",
            True,
        ),
        handler=_true_or_false(
            _pick(args.get("power_off_handler"), env, "OXIDE_CSI_POWER_OFF_HANDLER"),
            "power-off handler",
            True,
        ),
        command=_pick(args.get("power_off_command"), env, "OXIDE_CSI_POWER_OFF_COMMAND"),
        boot_id_file=env.get("OXIDE_CSI_BOOT_ID_FILE"),
    )
