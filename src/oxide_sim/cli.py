"""Command line of the simulated Oxide API: ``oxide-csi simulator ...`` or ``python -m oxide_sim``.

The first line on stdout is the base URL (flushed at once), so a script or test that started
the process with ``--listen 127.0.0.1:0`` learns the port by reading one line. The process then
serves until SIGTERM or SIGINT and exits 0. The token comes from ``--token`` or
``OXIDE_SIM_TOKEN`` and is never printed: a simulator token is still a credential a test setup
may share with real tooling.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from oxide_sim.names import check_name
from oxide_sim.releases import NEWEST, OLDEST, Release, parse_release, release
from oxide_sim.server import SimulatorServer
from oxide_sim.sim_config import SimConfig

TOKEN_ENV = "OXIDE_SIM_TOKEN"  # noqa: S105 -- the variable's name, not a secret
DEFAULT_LISTEN = "127.0.0.1:12220"


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` for IPv6); port 0 picks a free one."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


def _non_negative(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative number, got {value!r}")
    return number


def _project_name(value: str) -> str:
    """An extra project's name: an Oxide name short enough for its instance ``NAME-0``."""
    try:
        check_name(value)
        check_name(f"{value}-0")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{value!r}: {exc}") from None
    return value


def _count(value: str) -> int:
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {value!r}")
    return int(value)


def _release(value: str) -> Release:
    try:
        return parse_release(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="oxide-csi simulator",
        description="Serve a simulated Oxide API (the /v1 endpoints a CSI plugin uses, plus "
        "/sim test hooks). Prints the base URL as its first line, then serves until "
        "SIGTERM/SIGINT.",
    )
    p.add_argument(
        "--listen",
        type=parse_listen,
        default=parse_listen(DEFAULT_LISTEN),
        metavar="HOST:PORT",
        help=f"address to serve on (default {DEFAULT_LISTEN}; port 0 picks a free port)",
    )
    p.add_argument(
        "--state-dir", type=Path, help="keep state here across restarts (default: in memory)"
    )
    p.add_argument(
        "--token",
        help=f"bearer token clients must send (default: ${TOKEN_ENV}; one of them is required)",
    )
    p.add_argument("--project", default="default", help="project to create (default: default)")
    p.add_argument(
        "--extra-project",
        action="append",
        default=[],
        type=_project_name,
        metavar="NAME",
        help="another project, holding one running instance NAME-0 (repeatable)",
    )
    p.add_argument(
        "--instances",
        type=_count,
        default=2,
        help="running instances to create, each with a boot disk (default 2)",
    )
    p.add_argument(
        "--stop-seconds", type=_non_negative, default=1.0, help="stopping -> stopped (default 1)"
    )
    p.add_argument(
        "--start-seconds",
        type=_non_negative,
        default=1.0,
        help="starting -> running (default 1)",
    )
    p.add_argument(
        "--attach-seconds",
        type=_non_negative,
        default=0.0,
        help="show attaching/detaching for this long (default 0: at once, like Nexus)",
    )
    p.add_argument(
        "--release",
        type=_release,
        default=release(NEWEST),
        metavar="vN",
        help=f"Oxide release to play, v{OLDEST}..v{NEWEST} (default v{NEWEST}): its API shapes, "
        "version rules and disk slots",
    )
    p.add_argument(
        "--max-disks",
        type=_count,
        help="disks per instance, boot disk included (default: the release's, 8 up to v17, "
        "12 since v18)",
    )
    p.add_argument(
        "--hotplug",
        action="store_true",
        help="emulate a hot-plug rack: attach/detach accepted while the instance runs",
    )
    p.add_argument(
        "--disk-data-dir", type=Path, help="back each disk with a sparse file in this directory"
    )
    p.add_argument(
        "--traffic-log",
        type=Path,
        help="append every /v1 exchange as JSONL here (default: $OXIDE_SIM_TRAFFIC_LOG)",
    )
    p.add_argument(
        "--max-api-version",
        help="newest api-version accepted (default: the release's; ignored up to v17)",
    )
    p.add_argument("--log-level", default="warning", help="stderr log level (default warning)")
    return p


def config_from_args(args: argparse.Namespace, token: str) -> SimConfig:
    return SimConfig(
        token=token,
        project=args.project,
        extra_projects=list(args.extra_project),
        instances=args.instances,
        state_dir=args.state_dir,
        listen=args.listen,
        stop_seconds=args.stop_seconds,
        start_seconds=args.start_seconds,
        attach_seconds=args.attach_seconds,
        release=args.release.number,
        max_disks_per_instance=args.max_disks,
        hotplug=args.hotplug,
        max_api_version=args.max_api_version,
        traffic_log=args.traffic_log,
        disk_data_dir=args.disk_data_dir,
    )


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    token = args.token if args.token is not None else os.environ.get(TOKEN_ENV, "")
    if not token:
        parser.error(f"a token is required: pass --token or set {TOKEN_ENV}")
    if args.max_disks is not None and args.max_disks < 1:
        parser.error("--max-disks must be at least 1 (the boot disk takes a slot)")
    logging.basicConfig(
        level=args.log_level.upper(),
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    cfg = config_from_args(args, token)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    server = SimulatorServer(cfg)
    try:
        try:
            server.start()
        except OSError as exc:
            print(f"oxide-sim: error: cannot serve on {args.listen}: {exc}", file=sys.stderr)
            return 1
        try:
            print(server.url, flush=True)
            while not stop.wait(1.0):
                pass
        finally:
            server.stop()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0
