"""``python -m kube_sim``: a test Kubernetes API server in a process of its own.

For tests that kill controllers for real and for trying the plugin by hand: it prints its URL
on the first line of stdout (then flushes), writes a kubeconfig if asked, and serves until
SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from kube_sim.server import KubeSim


def _listen(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host, int(port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kube_sim", description=__doc__)
    parser.add_argument("--listen", type=_listen, default=("127.0.0.1", 0), help="HOST:PORT")
    parser.add_argument("--tls", action="store_true", help="serve HTTPS with a fresh CA")
    parser.add_argument(
        "--token", action="append", default=[], help="accepted bearer token (repeatable)"
    )
    parser.add_argument("--namespace", default="default", help="namespace of the kubeconfig")
    parser.add_argument("--kubeconfig-out", help="write a kubeconfig for this server here")
    args = parser.parse_args(argv)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    sim = KubeSim(tls=args.tls, tokens=args.token, namespaces=[args.namespace], listen=args.listen)
    with sim:
        if args.kubeconfig_out:
            token = args.token[0] if args.token else None
            sim.write_kubeconfig(args.kubeconfig_out, namespace=args.namespace, token=token)
        sys.stdout.write(sim.url + "\n")
        sys.stdout.flush()
        stop.wait()
    return 0
