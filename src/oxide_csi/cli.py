"""The ``oxide-csi`` command line.

Subcommands: ``serve`` runs the plugin (controller, node, or both), ``simulator`` runs the
simulated Oxide API, ``dev`` runs everything on one machine; ``call`` and ``demo`` are clients
of a running plugin (:mod:`oxide_csi.tools`). Configuration problems end with one
line on stderr naming what is wrong and exit code 2 -- never a traceback, never the token.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from oxide_csi import DRIVER_NAME, __version__
from oxide_csi.config import DEFAULT_KUBELET_DIR, Mode, ServeConfig
from oxide_csi.config_common import DEFAULT_API_VERSION, ConfigError
from oxide_csi.dev import add_dev_parser
from oxide_csi.logsetup import LEVELS, configure_logging
from oxide_csi.ssl_gate import allow_ssl
from oxide_csi.tools.commands import add_call_parser, add_demo_parser
from oxide_csi.tools.release import add_release_parser

EXIT_CONFIG = 2


def _add_logging_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--log-level", choices=LEVELS, default=os.environ.get("LOG_LEVEL"))
    parser.add_argument(
        "--log-format",
        choices=("auto", "json", "console"),
        default=os.environ.get("LOG_FORMAT", "auto"),
        help="json lines (default when not a terminal) or console",
    )


def _add_power_off_flags(serve: argparse.ArgumentParser) -> None:
    serve.add_argument(
        "--graceful-power-off",
        action="store_true",
        help="controller: ask a node's plugin to power its host off before Oxide's hard stop; "
        "node: keep a heartbeat and answer such requests ($OXIDE_CSI_GRACEFUL_POWER_OFF)",
    )
    serve.add_argument(
        "--graceful-stop-timeout",
        help="seconds the controller waits for a guest to power off before the hard stop "
        "(default 120)",
    )
    serve.add_argument("--power-off-heartbeat", help="node: false writes no heartbeat")
    serve.add_argument("--power-off-handler", help="node: false answers no power-off request")
    serve.add_argument(
        "--power-off-command",
        help="node: how the host is powered off (default: nsenter --target 1 --all -- "
        "systemctl poweroff)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="oxide-csi", description=f"CSI plugin {DRIVER_NAME} for Oxide rack disks"
    )
    parser.add_argument("--version", action="version", version=f"oxide-csi {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the CSI plugin")
    serve.add_argument("--mode", choices=[m.value for m in Mode], help="default: all ($CSI_MODE)")
    serve.add_argument("--endpoint", help="unix:///path or tcp://host:port ($CSI_ENDPOINT)")
    serve.add_argument("--node-id", help="this node's instance name or id ($CSI_NODE_ID)")
    serve.add_argument(
        "--kubelet-dir", help=f"kubelet root directory (default {DEFAULT_KUBELET_DIR})"
    )
    serve.add_argument("--oxide-host", help="Oxide API URL ($OXIDE_HOST)")
    serve.add_argument("--oxide-profile", help="profile in credentials.toml ($OXIDE_PROFILE)")
    serve.add_argument("--oxide-project", help="project holding the disks ($OXIDE_PROJECT)")
    serve.add_argument("--api-version", help=f"api-version header (default {DEFAULT_API_VERSION})")
    serve.add_argument(
        "--oxide-ca-file", help="CA bundle (PEM) for a rack with a private CA ($OXIDE_CA_FILE)"
    )
    serve.add_argument(
        "--max-disks-per-instance",
        help="disk slots per instance, boot disk included: the node reports this many (default "
        "8; 12 on v18+ racks); the controller uses the rack's limit (8 up to v17, 12 since) "
        "and this flag only lowers it",
    )
    serve.add_argument("--state-dir", help="controller's durable attach record directory")
    serve.add_argument(
        "--state-backend",
        choices=("file", "kubernetes"),
        help="where the controller keeps its state (default file; $OXIDE_CSI_STATE_BACKEND)",
    )
    serve.add_argument("--kubeconfig", help="kubeconfig outside a pod ($KUBECONFIG)")
    serve.add_argument("--namespace", help="namespace of the controller's state ($POD_NAMESPACE)")
    serve.add_argument(
        "--lease-duration", help="seconds an instance Lease lasts unrenewed (default 30)"
    )
    serve.add_argument(
        "--oxide-request-timeout", help="seconds one Oxide request may take (default 30)"
    )
    serve.add_argument(
        "--controller-instance-id",
        help="UUID of the instance the controller runs on, never powered off (default: read "
        "from DMI product_uuid; 'none' turns the guard off) ($OXIDE_CSI_CONTROLLER_INSTANCE_ID)",
    )
    serve.add_argument(
        "--attach-cycle-timeout",
        help="seconds one attach cycle (stop, apply, start with retries) may take (default 600)",
    )
    serve.add_argument("--shutdown-grace", help="seconds in-flight calls get on SIGTERM")
    serve.add_argument(
        "--attach-batch-window",
        help="seconds the controller gathers attach/detach work per instance (default 2)",
    )
    serve.add_argument(
        "--attachable",
        help="node: false keeps volumes off this node, which is then never power-cycled "
        "(default true; $OXIDE_CSI_ATTACHABLE)",
    )
    serve.add_argument(
        "--hot-attach",
        action="store_true",
        help="attach/detach on running instances first, for hot-plug racks "
        "($OXIDE_CSI_HOT_ATTACH; default off)",
    )
    serve.add_argument(
        "--hot-attach-timeout",
        help="seconds a hot-attached device may take to appear in the guest (default 60)",
    )
    _add_power_off_flags(serve)
    serve.add_argument(
        "--detach-policy",
        choices=("deferred", "immediate"),
        help="deferred: an unpublished disk stays attached until its instance cycles anyway; "
        "immediate: detach at once (default deferred; $OXIDE_CSI_DETACH_POLICY)",
    )
    serve.add_argument(
        "--deferred-delete-alert-after",
        help="seconds a deleted volume's disk may wait for its detach before a Warning "
        "(default 86400)",
    )
    serve.add_argument(
        "--metrics-address",
        help="serve Prometheus /metrics on HOST:PORT; empty = off ($OXIDE_CSI_METRICS_ADDRESS)",
    )
    _add_logging_flags(serve)

    add_dev_parser(sub)
    _add_logging_flags(sub.choices["dev"])
    add_call_parser(sub)
    add_demo_parser(sub)
    add_release_parser(sub)

    # Listed for --help only: main() hands its arguments to the simulator's own parser.
    sub.add_parser("simulator", help="run the simulated Oxide API (see: simulator --help)")
    return parser


def _serve(args: argparse.Namespace) -> int:
    from oxide_csi.config import build_serve_config

    # The token is read from the environment only: a flag would show it in `ps`.
    # OXIDE_CSI_SYSFS_ROOT: where sysfs is mounted (a container may mount the host's elsewhere;
    # tests point it at a directory of their own to control the DMI product_uuid).
    sys_root = Path(os.environ.get("OXIDE_CSI_SYSFS_ROOT") or "/sys")
    config = build_serve_config(vars(args), os.environ, sys_root=sys_root)
    guest = config.node.guest if config.node is not None else None
    if config.mode.runs_controller or config.metrics is not None or (guest and guest.kube):
        allow_ssl()  # see oxide_csi.ssl_gate; a node's heartbeat may speak TLS to Kubernetes
    configure_logging(args.log_level or "info", args.log_format)
    return _run(config)


def _dev(args: argparse.Namespace) -> int:
    from oxide_csi.dev import run_dev

    configure_logging(args.log_level or "info", args.log_format)
    return run_dev(args, _run)


def _run(config: ServeConfig) -> int:
    from oxide_csi.app import build_plugin
    from oxide_csi.server.grpc_server import serve_until_signalled
    from oxide_csi.server.listener import ListenError

    async def run() -> None:
        plugin = await build_plugin(config)
        await serve_until_signalled(plugin.spec, on_shutdown=plugin.aclose)

    try:
        asyncio.run(run())
    except ListenError as exc:
        print(f"oxide-csi: error: {exc}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["simulator"]:
        from oxide_sim.cli import main as simulator_main

        return simulator_main(argv[1:])
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "dev":
            return _dev(args)
        if hasattr(args, "run"):  # the client tools
            return int(args.run(args))
    except ConfigError as exc:
        print(f"oxide-csi: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130
    _parser().print_help(sys.stderr)
    return EXIT_CONFIG
