"""The ``call`` and ``demo`` subcommands' flags, kept apart from their code.

Why apart: the CLI builds its whole parser at every start, ``serve`` included, and the tools
import grpc, the generated stubs and httpx. Only the command that runs imports its module.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from oxide_csi.dev import DEFAULT_DEV_STATE

#: An attach on a rack waits for a stop and a start: minutes, not seconds.
DEFAULT_CALL_TIMEOUT = 300.0
_ENDPOINT_HELP = "plugin socket (default: $CSI_ENDPOINT, dev mode's, /csi/csi.sock)"


def _run_call(args: argparse.Namespace) -> int:
    from oxide_csi.tools.call import run_call

    return run_call(args)


def _run_demo(args: argparse.Namespace) -> int:
    from oxide_csi.tools.demo_run import run_demo

    return run_demo(args)


def _client_parser(
    sub: Any, name: str, run: Callable[[argparse.Namespace], int], help: str, description: str
) -> argparse.ArgumentParser:
    """A subcommand with what every client of a plugin socket takes: where, and how long."""
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help, description=description)
    parser.add_argument("--endpoint", help=_ENDPOINT_HELP)
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_CALL_TIMEOUT, help="seconds per call"
    )
    parser.set_defaults(run=run)
    return parser


def add_call_parser(sub: Any) -> None:
    call = _client_parser(
        sub,
        "call",
        _run_call,
        "call any CSI RPC of a running plugin (JSON in and out)",
        "Call a CSI RPC by name, e.g. `oxide-csi call Node.NodeGetInfo` or "
        "`oxide-csi call Controller.ListVolumes '{\"max_entries\": 10}'`. The request is the "
        "JSON argument, or stdin when it is '-' or absent and stdin is not a terminal.",
    )
    call.add_argument("method", nargs="?", help="SERVICE.METHOD (see --list)")
    call.add_argument("request", nargs="?", help="request as JSON ('-': read stdin)")
    call.add_argument("--list", action="store_true", help="list the methods and exit")
    call.add_argument(
        "--describe", action="store_true", help="print the method's request fields and exit"
    )


def add_demo_parser(sub: Any) -> None:
    demo = _client_parser(
        sub,
        "demo",
        _run_demo,
        "walk one volume through its whole life against a running plugin",
        "Create, attach, stage, publish, write and read back, snapshot, restore and read "
        "back from the restored volume, then tear everything down again, against a plugin "
        "serving both the controller and the node (as `oxide-csi dev` does). Needs root: it "
        "mounts under the plugin's kubelet directory. Cleans up after itself on failure and "
        "on Ctrl-C.",
    )
    demo.add_argument(
        "--kubelet-dir",
        help="the plugin's kubelet directory (default: $KUBELET_DIR, dev mode's, /var/lib/kubelet)",
    )
    demo.add_argument(
        "--dev-state",
        default=str(DEFAULT_DEV_STATE),
        help="state directory of `oxide-csi dev`, whose oxide.env tells where things are",
    )
    demo.add_argument("--size-gib", type=int, default=1, help="size of the demo volume")
