"""Which plugin a client tool talks to, and the channel to it.

Why a search order instead of one default: the same command is typed by a newcomer next to
``oxide-csi dev`` (socket ``/run/oxide-csi/csi.sock``) and by an operator inside a plugin pod
(``kubectl exec``: the chart's socket ``/csi/csi.sock``). So the tools take ``--endpoint``,
then ``$CSI_ENDPOINT`` (which ``source STATE/oxide.env`` sets), then what dev mode wrote in its
default state directory, then whichever of the two well-known sockets exists.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import grpc

from oxide_csi.config import DEFAULT_ENDPOINT
from oxide_csi.dev import DEFAULT_DEV_ENDPOINT, DEFAULT_DEV_STATE
from oxide_csi.endpoint import parse_endpoint
from oxide_csi.tools import oxide_env


class TargetError(ValueError):
    """The endpoint or the dev environment file is malformed (a usage error, exit code 2)."""


def dev_values(state_dir: Path = DEFAULT_DEV_STATE) -> dict[str, str]:
    """What ``oxide-csi dev`` wrote in ``state_dir/oxide.env``; empty when there is nothing
    readable there (no dev mode ran, or we are not root: the file is 0600)."""
    try:
        return oxide_env.read(state_dir / oxide_env.FILE_NAME)
    except oxide_env.OxideEnvError:
        return {}


def resolve_endpoint(
    flag: str | None, env: Mapping[str, str], dev: Mapping[str, str] | None = None
) -> str:
    """The endpoint to use, in the order the module's docstring gives."""
    for candidate in (flag, env.get("CSI_ENDPOINT"), (dev or {}).get("CSI_ENDPOINT")):
        if candidate:
            return candidate
    for well_known in (DEFAULT_DEV_ENDPOINT, DEFAULT_ENDPOINT):
        if Path(well_known.removeprefix("unix://")).exists():
            return well_known
    return DEFAULT_DEV_ENDPOINT


def open_channel(endpoint: str) -> grpc.Channel:
    try:
        address = parse_endpoint(endpoint).grpc_address
    except ValueError as exc:
        raise TargetError(str(exc)) from None
    return grpc.insecure_channel(address)
