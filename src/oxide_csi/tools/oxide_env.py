"""The ``oxide.env`` file: where ``oxide-csi dev`` tells a user (and the demo) where things are.

Why a file and not only a printout: the simulated Oxide's token is made at random at every
start, so a second terminal (or ``oxide-csi demo``) needs a place to find it. The format is the
one a POSIX shell reads: ``export NAME='value'`` lines, so ``source STATE/oxide.env`` or
``eval "$(cat STATE/oxide.env)"`` both work, and it is parsed back here without a shell. It
holds a token, so it is written with mode 0600, atomically (a reader never sees half of it).
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from pathlib import Path

FILE_NAME = "oxide.env"
#: What an Oxide client needs (the Oxide CLI and SDKs read these three).
OXIDE_KEYS = ("OXIDE_HOST", "OXIDE_TOKEN", "OXIDE_PROJECT")
#: Where the plugin serves CSI and where its node stages and publishes: what ``oxide-csi call``
#: and ``oxide-csi demo`` read when no flag is given (``serve`` reads the same names).
PLUGIN_KEYS = ("CSI_ENDPOINT", "KUBELET_DIR")


class OxideEnvError(ValueError):
    """The file is unreadable or not in the ``export NAME=value`` form."""


def render(values: Mapping[str, str]) -> str:
    """``export NAME=value`` lines, values quoted for a POSIX shell."""
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in values.items())


def write(directory: Path, values: Mapping[str, str]) -> Path:
    """Write ``directory/oxide.env`` (mode 0600, replaced atomically); return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / FILE_NAME
    tmp = directory / f".{FILE_NAME}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # a stale temporary file may have had another mode
        os.write(fd, render(values).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return path


def parse(text: str) -> dict[str, str]:
    """The values of ``export NAME=value`` (or ``NAME=value``) lines; comments are skipped."""
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        try:
            words = shlex.split(line, comments=True)
        except ValueError as exc:
            raise OxideEnvError(f"line {number}: {exc}") from None
        if not words:
            continue
        if words[0] == "export":
            words = words[1:]
        name, sep, value = (words or [""])[0].partition("=")
        if len(words) != 1 or not sep or not name.isidentifier():
            raise OxideEnvError(f"line {number} is not NAME=value")
        values[name] = value
    return values


def read(path: Path) -> dict[str, str]:
    try:
        return parse(path.read_text())
    except OSError as exc:
        raise OxideEnvError(f"cannot read {path}: {exc.strerror}") from None
