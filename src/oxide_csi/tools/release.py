"""``oxide-csi release-instance INSTANCE``: detach an instance's released disks now.

For a maintenance window: under the deferred detach policy, unpublished disks stay attached
(idle) and deleted claims' disks wait, until their instance's next cycle. This asks the
controller for that cycle now, through the state backend (``release_requests.py``), so that
whichever controller may act on the instance does it; by default it waits for the answer and
says what was released. Exit 0 when done, 1 when the controller refused or did not answer in
time (the request then stays for it), 2 for a configuration problem.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

from oxide_csi.config_common import ConfigError

# The CLI builds every subcommand's parser at each start (``serve --mode node`` too): the
# store's modules (the controller package, httpx) are imported only when this command runs.
if TYPE_CHECKING:
    from oxide_csi.controller.attach.release_requests import ReleaseRequest, ReleaseRequestStore

DEFAULT_STATE_DIR = "/var/lib/oxide-csi"
#: How often the answer is looked for.
_POLL = 0.5


def add_release_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "release-instance",
        help="detach an instance's released disks now (one power cycle), e.g. in a "
        "maintenance window",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    parser.add_argument("instance", help="the instance (node) name or id")
    parser.add_argument(
        "--state-backend",
        choices=("file", "kubernetes"),
        help="the controller's (default file; $OXIDE_CSI_STATE_BACKEND)",
    )
    parser.add_argument("--state-dir", help=f"file backend (default {DEFAULT_STATE_DIR})")
    parser.add_argument("--kubeconfig", help="kubernetes backend: kubeconfig ($KUBECONFIG)")
    parser.add_argument("--namespace", help="kubernetes backend: the controller's namespace")
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="seconds to wait for the answer (900)"
    )
    parser.add_argument("--no-wait", action="store_true", help="ask, and do not wait")
    parser.set_defaults(run=run_release)


def run_release(args: argparse.Namespace) -> int:
    return asyncio.run(_release(args))


async def _release(args: argparse.Namespace) -> int:
    from oxide_csi.controller.attach.release_requests import new_request

    async with AsyncExitStack() as resources:
        store = await _store(args, resources)
        request = new_request(str(args.instance))
        await store.put(request)
        if args.no_wait:
            print(f"release of instance {request.instance} requested ({request.id})")
            return 0
        answer = await _wait(store, request, time.monotonic() + float(args.timeout))
        if answer is None:
            print(
                f"oxide-csi: no answer from the controller in {args.timeout:.0f}s; the request "
                f"{request.id} stays for it",
                file=sys.stderr,
            )
            return 1
        await store.delete(request.id)
        if answer.error:
            print(
                f"oxide-csi: release of {answer.instance} failed: {answer.error}", file=sys.stderr
            )
            return 1
        names = ", ".join(answer.released) if answer.released else "none"
        print(f"instance {answer.instance}: released disks detached: {names}")
        return 0
    raise AssertionError("unreachable")


async def _wait(
    store: ReleaseRequestStore, request: ReleaseRequest, end: float
) -> ReleaseRequest | None:
    while time.monotonic() < end:
        found = await store.get(request.id)
        if found is not None and found.done is not None:
            return found
        await asyncio.sleep(_POLL)
    return None


async def _store(args: argparse.Namespace, resources: AsyncExitStack) -> ReleaseRequestStore:
    from oxide_csi.controller.attach.release_requests import FileReleaseRequests

    env = os.environ
    backend = args.state_backend or env.get("OXIDE_CSI_STATE_BACKEND") or "file"
    if backend == "file":
        state = args.state_dir or env.get("OXIDE_CSI_STATE_DIR") or DEFAULT_STATE_DIR
        return FileReleaseRequests(Path(state) / "release-requests")
    from oxide_csi.kube.client import kube_client
    from oxide_csi.kube.release_requests import KubeReleaseRequests
    from oxide_csi.kube.settings import KubeSettingsError, kube_settings

    try:
        settings = kube_settings(
            namespace=args.namespace,
            kubeconfig=args.kubeconfig,
            lease_seconds=None,
            oxide_call_seconds=30.0,
            env=env,
        )
    except KubeSettingsError as exc:
        raise ConfigError(str(exc)) from None
    client = kube_client(settings)
    resources.push_async_callback(client.close)
    return KubeReleaseRequests(client, settings.namespace)
