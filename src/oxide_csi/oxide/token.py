"""Where the bearer token comes from: fixed at start, or a file read again when it changes.

Why a file: Kubernetes updates a mounted Secret in place (an atomic symlink swap), while an
environment variable keeps its value for the life of the process. Reading the token from the
mounted file whenever the file changes lets an operator rotate the token without restarting
the controller. One ``stat`` per request is the whole cost; the file is read only when its
identity (device, inode, size, modification time) changed.

A file that cannot be read, or holds no single-line token, keeps the last good token in use
(the rack then says whether it still works) and is tried again on the next request.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

from oxide_csi.secrets import read_token_file

_log = logging.getLogger(__name__)


class TokenSource:
    """The current token. ``path`` None: always ``token``. ``on_change`` hears each new token
    (the plugin registers it for redaction) before it is used."""

    def __init__(
        self,
        token: str,
        path: Path | None = None,
        on_change: Callable[[str], None] | None = None,
    ) -> None:
        self._token = token
        self._path = path
        self._on_change = on_change
        self._seen: tuple[int, int, int, int] | None = self._identity()
        self._lock = threading.Lock()

    def _identity(self) -> tuple[int, int, int, int] | None:
        if self._path is None:
            return None
        try:
            st = os.stat(self._path)
        except OSError:
            return None
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)

    def current(self) -> str:
        if self._path is None:
            return self._token
        seen = self._identity()
        if seen is None or seen == self._seen:
            return self._token
        with self._lock:
            if seen != self._seen:
                try:
                    token = read_token_file(self._path)
                except ValueError as exc:
                    _log.warning("keeping the current token: %s", exc)
                    return self._token
                if self._on_change is not None:
                    self._on_change(token)
                if token != self._token:
                    _log.info("the token file %s changed; using the new token", self._path)
                self._token, self._seen = token, seen
        return self._token
