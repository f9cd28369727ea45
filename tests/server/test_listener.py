"""Socket hygiene: stale sockets are replaced, live ones and other files are left alone."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from oxide_csi.server.listener import ListenError, prepare_unix_socket


def test_stale_socket_is_replaced(short_tmp: Path) -> None:
    path = short_tmp / "stale.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(path))
    s.close()  # bound but nobody listening: what a crashed server leaves behind
    prepare_unix_socket(path)
    assert not path.exists()


def test_live_socket_is_refused(short_tmp: Path) -> None:
    path = short_tmp / "live.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))
        s.listen(1)
        with pytest.raises(ListenError, match="already listening"):
            prepare_unix_socket(path)
    assert path.exists()


def test_regular_file_is_never_removed(short_tmp: Path) -> None:
    path = short_tmp / "data"
    path.write_text("precious")
    with pytest.raises(ListenError, match="not a socket"):
        prepare_unix_socket(path)
    assert path.read_text() == "precious"


def test_parent_directory_is_created(short_tmp: Path) -> None:
    path = short_tmp / "a" / "b" / "csi.sock"
    prepare_unix_socket(path)
    assert path.parent.is_dir()
