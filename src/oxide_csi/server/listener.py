"""Preparing the place the server listens on.

For a unix socket: the parent directory is created (kubelet's plugin directory may not exist yet
on a fresh node), a *stale* socket left by a crashed predecessor is replaced, but a socket that
still answers is left alone and reported (two plugins on one socket would split the traffic),
and the socket is created with owner/group-only permissions (0660), since whoever can connect
can create and attach disks.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

from oxide_csi.endpoint import Endpoint

SOCKET_MODE = 0o660


class ListenError(RuntimeError):
    """The endpoint cannot be used (another live server, or a non-socket file in the way)."""


def _socket_answers(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def prepare_unix_socket(path: Path) -> None:
    """Create the parent directory and clear a stale socket at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ListenError(f"{path} exists and is not a socket; refusing to replace it")
    if _socket_answers(path):
        raise ListenError(f"another server is already listening on {path}")
    path.unlink()


@contextlib.contextmanager
def restrictive_umask(endpoint: Endpoint) -> Iterator[None]:
    """While binding a unix socket, make it 0660 from birth (no window where it is wider)."""
    if endpoint.scheme != "unix":
        yield
        return
    old = os.umask(0o117)
    try:
        yield
    finally:
        os.umask(old)


def finish_unix_socket(endpoint: Endpoint) -> None:
    if endpoint.scheme == "unix" and endpoint.path is not None and endpoint.path.exists():
        os.chmod(endpoint.path, SOCKET_MODE)


def remove_unix_socket(endpoint: Endpoint) -> None:
    if endpoint.scheme == "unix" and endpoint.path is not None:
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(endpoint.path.lstat().st_mode):
                endpoint.path.unlink()
