"""The ``oxide-csi demo`` command: find the plugin, run the steps, clean up, say how it went.

Where things are comes from flags, then the environment (``source STATE/oxide.env`` sets it
all), then the ``oxide.env`` that ``oxide-csi dev`` wrote in its state directory when it
describes the same endpoint. Oxide credentials are optional: with them the attach and detach
steps show the instance's stop and start as they happen, without them only their time.

Interrupts: Ctrl-C or SIGTERM end the running step and start the clean-up; during the clean-up
both are ignored (each call has its timeout), because a clean-up cut short is what leaves a
mount or a disk behind. Exit codes: 0 every step passed, 1 a step failed (step and error on
stderr), 2 a usage error, 130 interrupted; also 1 when the clean-up could not undo everything.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

from oxide_csi.config import DEFAULT_KUBELET_DIR
from oxide_csi.tools.demo import Demo, StepFailed
from oxide_csi.tools.oxide_view import OxideAccess, OxideView
from oxide_csi.tools.progress import make_reporter, summary_table
from oxide_csi.tools.target import TargetError, dev_values, open_channel, resolve_endpoint

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@dataclass(frozen=True)
class DemoTarget:
    endpoint: str
    kubelet_dir: Path
    oxide: OxideAccess | None


def _access(values: Mapping[str, str]) -> OxideAccess | None:
    host, token, project = (values.get(k) for k in ("OXIDE_HOST", "OXIDE_TOKEN", "OXIDE_PROJECT"))
    return OxideAccess(host, token, project) if host and token and project else None


def resolve_target(args: argparse.Namespace, env: Mapping[str, str]) -> DemoTarget:
    dev = dev_values(Path(args.dev_state))
    endpoint = resolve_endpoint(args.endpoint, env, dev)
    same_plugin = dev if dev.get("CSI_ENDPOINT") == endpoint else {}
    kubelet = args.kubelet_dir or env.get("KUBELET_DIR") or same_plugin.get("KUBELET_DIR")
    kubelet_dir = Path(kubelet or DEFAULT_KUBELET_DIR)
    if not kubelet_dir.is_absolute():
        raise TargetError(f"kubelet dir must be absolute, got {kubelet_dir}")
    return DemoTarget(endpoint, kubelet_dir.resolve(), _access(env) or _access(same_plugin))


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextmanager
def _signals(handler: Callable[[int, FrameType | None], None]) -> Iterator[None]:
    """SIGINT and SIGTERM handled by ``handler`` inside; as before afterwards."""
    previous = {sig: signal.signal(sig, handler) for sig in _SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def run_demo(args: argparse.Namespace) -> int:
    try:
        target = resolve_target(args, os.environ)
        channel = open_channel(target.endpoint)
    except TargetError as exc:
        print(f"oxide-csi demo: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if os.geteuid() != 0:
        print("oxide-csi demo: error: needs root (it mounts under the kubelet directory, as "
              "the kubelet would)", file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    reporter = make_reporter(sys.stdout)
    view = OxideView(target.oxide) if target.oxide else None
    watched = f"Oxide at {target.oxide.host}" if target.oxide else "no Oxide access"
    demo = Demo(channel, target.kubelet_dir, reporter, view=view, size_gib=args.size_gib,
                timeout=args.timeout)  # fmt: skip
    reporter.message(f"plugin at {target.endpoint}, {watched}")
    reporter.message(f"staging path {demo.staging}")
    reporter.message(f"target path {demo.target}")
    code, failure = 0, ""
    with _signals(_interrupt):
        try:
            demo.run()
        except StepFailed as exc:
            code, failure = EXIT_FAILED, str(exc)
        except KeyboardInterrupt:
            code, failure = EXIT_INTERRUPTED, "interrupted"
        finally:
            for sig in _SIGNALS:
                signal.signal(sig, signal.SIG_IGN)
            if demo.undo.pending():
                reporter.message("cleaning up what the demo made (Ctrl-C waits for this)")
            left = demo.clean_up()
            reporter.close()
            channel.close()
            if view is not None:
                view.close()
    print("\n" + summary_table(demo.results), flush=True)
    if failure:
        print(f"oxide-csi demo: {failure}", file=sys.stderr)
    if "step connect failed: UNAVAILABLE" in failure:
        print(f"oxide-csi demo: nothing answers at {target.endpoint}: is the plugin running "
              "(`oxide-csi dev`)? Otherwise pass --endpoint.", file=sys.stderr)  # fmt: skip
    if left:
        print(f"oxide-csi demo: could not clean up: {'; '.join(left)}", file=sys.stderr)
        code = code or EXIT_FAILED
    elif not failure:
        print(f"oxide-csi demo: every step passed, nothing left behind ({demo.name})")
    return code
