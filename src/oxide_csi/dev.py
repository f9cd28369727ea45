"""``oxide-csi dev``: the whole plugin on one machine, against a simulated Oxide.

Why in one process: a developer (or the README's first command) should get a working CSI
endpoint with one command and no credentials. This module is the only part of the plugin that
knows the simulator: it starts one on loopback with a fresh random token, points the plugin's
own configuration at it, and then runs the very same ``serve`` code path a cluster runs, in
mode ``all``. This machine plays the simulated instance ``instance-0``, so the node id is that
instance's UUID, exactly as a real node reads it from ``product_uuid``.

The device plane (:mod:`oxide_csi.devplane`) makes the rest real: every disk attached to
``instance-0`` is a loop device while the instance runs, found by the node through the same
identity check as on a rack. Hence root, as the node plugin needs.

State under ``--state-dir`` survives a restart: ``sim/`` (the simulated rack), ``disks/`` (the
disks' sparse data files), ``controller/`` (the attach record). ``devices/`` (links named by
serial, the loop devices' backing files) holds only what a reboot would lose: its devices are
released on exit and, after a crash, at the next start -- and with them every mount they back
(filesystems on them, bind mounts of those, bind mounts of their device nodes), found through
mountinfo. Nothing else under the kubelet directory is touched, ever: dev mode may run beside a
real kubelet (``--hotplug``, see the README's recipe), whose pod volumes, tokens and other
drivers' volumes live there too. Data is never deleted. ``oxide.env`` (mode 0600) holds what a
client needs: the simulated Oxide's URL, token and project, the CSI endpoint and the kubelet
directory.

Graceful power-off is on: this machine's node plugin is instance-0's guest (it flushes and
unmounts what it staged, then tells the simulator the guest powered itself off), and the other
simulated instances get a heartbeat and a handler of their own (``devplane.guests``), so every
cycle is a guest power-off unless the switches say otherwise.

Why ``--hotplug`` is needed for a kubelet directory outside the state directory: a simulated
stop takes every device of the instance away while the machine, and so a real kubelet with its
pods, keeps running -- nothing a real power-off would ever do to a running pod. A hot-plug
rack attaches without stopping, and the plugin's hot attach (on with ``--hotplug``) uses it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oxide_csi.config import ServeConfig, build_serve_config
from oxide_csi.config_common import ConfigError

if TYPE_CHECKING:
    from oxide_csi.devplane import DevicePlane
    from oxide_csi.devplane.guests import GuestBoots, OtherGuests
    from oxide_csi.poweroff.settings import GuestSettings

DEFAULT_DEV_STATE = Path("/var/lib/oxide-csi-dev")
DEFAULT_DEV_ENDPOINT = "unix:///run/oxide-csi/csi.sock"
#: The simulated instance this machine plays.
DEV_INSTANCE = "instance-0"
#: Simulated stop/start time: well under a second, so attach cycles (and a conformance run,
#: which makes many) stay fast. A rack takes tens of seconds; pass more to feel that.
DEFAULT_TRANSITION_SECONDS = 0.2


def add_dev_parser(sub: Any) -> None:
    dev = sub.add_parser("dev", help="run the plugin against a simulated Oxide on this machine")
    dev.add_argument("--endpoint", default=DEFAULT_DEV_ENDPOINT, help="CSI endpoint to serve")
    dev.add_argument("--state-dir", default=str(DEFAULT_DEV_STATE), help="where state is kept")
    dev.add_argument("--kubelet-dir", help="kubelet directory the node uses (STATE/kubelet)")
    dev.add_argument("--instances", type=int, default=2, help="simulated instances (>= 1)")
    dev.add_argument("--oxide-listen", default="127.0.0.1:0", help="simulated Oxide HOST:PORT")
    dev.add_argument(
        "--stop-seconds", type=float, default=DEFAULT_TRANSITION_SECONDS, help="instance stop"
    )
    dev.add_argument(
        "--start-seconds", type=float, default=DEFAULT_TRANSITION_SECONDS, help="instance start"
    )
    dev.add_argument(
        "--release",
        default="v22",
        help="Oxide release the simulated rack plays, v15..v22 (default v22)",
    )
    dev.add_argument(
        "--max-disks-per-instance",
        help="disk slots per instance (default: the release's, 8 up to v17, 12 since)",
    )
    dev.add_argument("--metrics-address", default="", help="serve Prometheus metrics on HOST:PORT")
    _add_guest_flags(dev)
    dev.add_argument(
        "--detach-policy",
        choices=("deferred", "immediate"),
        default="deferred",
        help="deferred: an unpublished disk stays attached until the instance cycles anyway "
        "(default); immediate: every unpublish is a cycle",
    )
    dev.add_argument(
        "--hotplug",
        action="store_true",
        help="play a hot-plug rack (attach/detach while running) and turn hot attach on; "
        "needed for a kubelet dir outside the state dir",
    )


def _add_guest_flags(dev: Any) -> None:
    dev.add_argument(
        "--no-graceful-power-off",
        action="store_true",
        help="cycles stop instances hard (default: each simulated guest, instance-0's being "
        "this machine's node, powers itself off in order when asked)",
    )
    dev.add_argument(
        "--graceful-stop-timeout", default="", help="seconds to wait for the guest (default 120)"
    )
    dev.add_argument(
        "--no-guest-heartbeat", action="store_true", help="the guests write no heartbeat"
    )
    dev.add_argument(
        "--no-guest-handler", action="store_true", help="the guests ignore power-off requests"
    )


def run_dev(args: argparse.Namespace, serve: Callable[[ServeConfig], int]) -> int:
    """Start the simulator and the device plane, then ``serve`` the plugin until signalled."""
    from oxide_csi.devplane import DevicePlaneError

    _check_kubelet_dir(args)
    if os.geteuid() != 0:
        raise ConfigError("oxide-csi dev needs root: it creates loop devices and mounts them")
    if shutil.which("losetup") is None:
        raise ConfigError("oxide-csi dev needs losetup (package util-linux)")
    try:
        return _run_dev(args, serve)
    except DevicePlaneError as exc:
        print(f"oxide-csi: error: dev device plane: {exc}", file=sys.stderr)
        return 1


def _dirs(args: argparse.Namespace) -> tuple[Path, Path]:
    """The state directory and the kubelet directory, resolved."""
    # resolve(), not absolute(): the node's path guard insists on a normalised kubelet dir.
    state = Path(args.state_dir).resolve()
    kubelet_dir = Path(args.kubelet_dir).resolve() if args.kubelet_dir else state / "kubelet"
    return state, kubelet_dir


def _check_kubelet_dir(args: argparse.Namespace) -> None:
    """Refuse a kubelet directory outside the state directory unless the rack hot-plugs."""
    state, kubelet_dir = _dirs(args)
    if args.hotplug or (kubelet_dir.is_relative_to(state) and kubelet_dir != state):
        return
    raise ConfigError(
        f"kubelet dir {kubelet_dir} is outside the state dir {state}: a simulated stop would "
        "pull the disks of a live kubelet's pods; pass --hotplug to serve a real kubelet"
    )


def _run_dev(args: argparse.Namespace, serve: Callable[[ServeConfig], int]) -> int:
    from oxide_csi.devplane import DevicePlane
    from oxide_csi.devplane.guests import GuestBoots
    from oxide_sim import SimConfig, SimulatorServer
    from oxide_sim.releases import parse_release

    state, kubelet_dir = _dirs(args)
    host, _, port = str(args.oxide_listen).rpartition(":")
    try:
        listen = (host or "127.0.0.1", int(port or 0))
        played = parse_release(str(args.release))
        max_disks = int(args.max_disks_per_instance or played.max_disks)
    except ValueError:
        raise ConfigError(
            "--oxide-listen must be HOST:PORT, --release v15..v22 and "
            "--max-disks-per-instance a whole number"
        ) from None
    # os.urandom is what secrets.token_hex reads; the console script imports this module in
    # every mode, and ``secrets`` would load hashlib and with it OpenSSL into each node plugin.
    token = "oxide-token-dev-" + os.urandom(16).hex()
    sim_cfg = SimConfig(
        token=token,
        instances=max(1, int(args.instances)),
        state_dir=state / "sim",
        listen=listen,
        stop_seconds=float(args.stop_seconds),
        start_seconds=float(args.start_seconds),
        release=played.number,
        max_disks_per_instance=max_disks,
        disk_data_dir=state / "disks",
        hotplug=bool(args.hotplug),
    )
    plane = DevicePlane(
        DEV_INSTANCE,
        devices_dir=state / "devices",
        data_dir=state / "disks",
        boot_id_file=state / "guest" / "boot_id",
    )
    # Reap what a crashed run left (its devices and their mounts), before anything binds anew.
    plane.release_everything()
    kubelet_dir.mkdir(parents=True, exist_ok=True)
    sim = SimulatorServer(sim_cfg)
    # Registered before start: transitions a previous run left half-way finish with the hooks.
    sim.add_instance_hook(plane)
    boots = GuestBoots(state / "guest" / "others")
    sim.add_instance_hook(boots)
    made: list[Path] = []  # directories dev mode creates for its socket, removed at exit
    try:
        sim.start()
        try:
            stack = contextlib.ExitStack()  # the other guests, stopped before the simulator
            node_id = _resume(plane, sim.url, token, sim_cfg.project)
            config = build_serve_config(
                {
                    "mode": "all",
                    "endpoint": args.endpoint,
                    "node_id": node_id,
                    "kubelet_dir": str(kubelet_dir),
                    "state_dir": str(state / "controller"),
                    # the node's own count; the controller asks the rack, lowered by the flag
                    "max_disks_per_instance": str(max_disks),
                    "attach_batch_window": "0.5",
                    # The guard is off on purpose: this process plays instance-0, but a
                    # simulated stop powers nothing off here, so publishing to instance-0 (what
                    # the node needs) is safe. Its id would refuse exactly that, and this
                    # machine's own DMI UUID names no simulated instance.
                    "controller_instance_id": "none",
                    "metrics_address": args.metrics_address,
                    "hot_attach": "true" if args.hotplug else "",
                    "detach_policy": args.detach_policy,
                    **_guest_args(args),
                },
                {
                    "OXIDE_HOST": sim.url,
                    "OXIDE_TOKEN": token,
                    "OXIDE_PROJECT": sim_cfg.project,
                    "OXIDE_CSI_BOOT_ID_FILE": str(plane.boot_id_file),
                },
            )
            made = _missing_dirs(config.endpoint.path)
            assert config.node is not None
            guest = config.node.guest
            if guest is not None:  # this machine is instance-0's guest: it powers off so
                guest = dataclasses.replace(guest, action=_guest_power_off(plane, sim.url))
                others = _other_guests(guest, boots, sim.url, token, sim_cfg.project)
                others.start()
                stack.callback(others.stop)
            node = dataclasses.replace(config.node, loop_device_dir=plane.devices_dir, guest=guest)
            config = dataclasses.replace(config, node=node)
            print(
                f"oxide-csi dev: simulated Oxide release {played.name} at {sim.url} "
                f"(see {sim.url}/sim/stats); "
                f"this machine is {DEV_INSTANCE}, node id {node_id}",
                flush=True,
            )
            print(
                f"oxide-csi dev: serving CSI on {args.endpoint} (kubelet dir {kubelet_dir})",
                flush=True,
            )
            _announce_env(state, sim.url, token, sim_cfg.project, args.endpoint, kubelet_dir)
            with stack:
                return serve(config)
        finally:
            sim.stop()  # no more instance transitions, so no hook runs during the clean-up
    finally:
        plane.release_everything()
        for directory in made:  # deepest first; one that is not empty now is not only ours
            with contextlib.suppress(OSError):
                directory.rmdir()


def _guest_args(args: argparse.Namespace) -> dict[str, str]:
    """The serve flags of graceful power-off as dev mode sets them (on unless turned off)."""
    if args.no_graceful_power_off:
        return {}
    return {
        "graceful_power_off": "true",
        "graceful_stop_timeout": str(args.graceful_stop_timeout),
        "power_off_heartbeat": "false" if args.no_guest_heartbeat else "true",
        "power_off_handler": "false" if args.no_guest_handler else "true",
    }


def _guest_power_off(plane: DevicePlane, sim_url: str) -> Callable[[], None]:
    """What instance-0's guest does when its node plugin powers it off: flush and unmount
    what is staged on its disks, then tell the simulated rack that the guest shut down (a
    /sim hook: on a rack the hypervisor sees the guest power off, nobody needs credentials)."""

    def power_off() -> None:
        import httpx

        plane.shut_down_guest()
        url = f"{sim_url}/sim/instances/{DEV_INSTANCE}/guest-power-off"
        httpx.post(url, timeout=10).raise_for_status()

    return power_off


def _other_guests(
    guest: GuestSettings, boots: GuestBoots, url: str, token: str, project: str
) -> OtherGuests:
    """Guests for the simulated instances this machine does not play (``devplane.guests``)."""
    import httpx

    from oxide_csi.devplane.guests import OtherGuests

    headers = {"Authorization": f"Bearer {token}"}
    listed = httpx.get(
        f"{url}/v1/instances", params={"project": project, "limit": 100}, headers=headers
    )
    listed.raise_for_status()
    others = {i["name"]: i["id"] for i in listed.json()["items"] if i["name"] != DEV_INSTANCE}

    def power_off(name: str) -> None:
        httpx.post(f"{url}/sim/instances/{name}/guest-power-off", timeout=10).raise_for_status()

    assert guest.channel_dir is not None
    return OtherGuests(
        guest.channel_dir,
        boots,
        others,
        power_off,
        heartbeat=guest.heartbeat,
        handler=guest.handler,
    )


def _missing_dirs(socket: Path | None) -> list[Path]:
    """The socket's ancestors that do not exist yet, deepest first: the listener creates them
    (``/var/lib/kubelet/plugins/csi.oxide.computer`` beside a real kubelet), so they are dev
    mode's to remove at exit -- unlike anything that was there before it started."""
    missing: list[Path] = []
    if socket is not None:
        for parent in socket.parents:
            if parent.exists():
                break
            missing.append(parent)
    return missing


def _announce_env(
    state: Path, url: str, token: str, project: str, endpoint: str, kubelet_dir: Path
) -> None:
    """Print the environment a client needs and keep it in ``STATE/oxide.env``: the token is
    new at every start, and a second terminal (or ``oxide-csi demo``) has no other way to it."""
    from oxide_csi.tools import oxide_env

    values = {"OXIDE_HOST": url, "OXIDE_TOKEN": token, "OXIDE_PROJECT": project}
    values |= {"CSI_ENDPOINT": endpoint, "KUBELET_DIR": str(kubelet_dir)}
    path = oxide_env.write(state, values)
    print(f"oxide-csi dev: environment for clients (`source {path}`, or eval these lines):")
    print(oxide_env.render(values), end="", flush=True)


def _resume(plane: DevicePlane, url: str, token: str, project: str) -> str:
    """Bind the devices of our instance if it is running already; return its id (the node id).

    After a restart the simulated rack still has the instance running, so no start transition
    will call the hook: its disks get their loop devices here. Binding is idempotent, so a hook
    that already ran at boot (finishing an interrupted start) does no harm.
    """
    import httpx  # imported here: plain `oxide-csi --version` should not pay for it

    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
        response = client.get(f"/v1/instances/{DEV_INSTANCE}", params={"project": project})
        response.raise_for_status()
        instance = response.json()
        if instance["run_state"] == "running":
            response = client.get(f"/v1/instances/{instance['id']}/disks", params={"limit": 100})
            response.raise_for_status()
            plane.before_running(instance, response.json()["items"])
    return str(instance["id"])
