"""Run the external tools the node relies on (util-linux, e2fsprogs, xfsprogs).

One runner so that every tool call gets the same treatment: no shell, no stdin (so a tool that
would prompt gets EOF instead of hanging), the C locale (messages are stable), a timeout, and a
failure turned into a domain error whose message names the tool and carries its stderr.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Sequence

import structlog

from oxide_csi.errors import CSIError, Internal, Unavailable

log = structlog.get_logger(__name__)

#: Default seconds a tool may run. mkfs with lazy init on a multi-TiB disk takes well under a
#: second; a minute leaves room for a slow disk without letting a hung tool block forever.
DEFAULT_TOOL_TIMEOUT = 60.0

_MAX_STDERR = 500


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["LC_ALL"] = "C"
    return env


def tool_message(result: subprocess.CompletedProcess[str]) -> str:
    """The part of a tool's output worth putting in an error: stderr, else stdout, trimmed."""
    text = (result.stderr or result.stdout or "").strip()
    text = " ".join(text.split())
    if len(text) > _MAX_STDERR:
        text = text[:_MAX_STDERR] + "..."
    return text or f"exit status {result.returncode}"


def run_tool(
    args: Sequence[str],
    *,
    timeout: float = DEFAULT_TOOL_TIMEOUT,
    check: bool = True,
    error: Callable[[str], CSIError] = Internal,
) -> subprocess.CompletedProcess[str]:
    """Run ``args`` and return the finished process.

    With ``check`` a non-zero exit raises ``error(message)``; without it the caller interprets
    the exit code (``blkid`` uses codes to mean different things). A missing tool is an
    :class:`Internal` error (the image is broken); a timeout is :class:`Unavailable` (the tool
    was killed, so nothing is left running and a retry starts afresh).
    """
    argv = list(args)
    try:
        result = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=_env(),
            check=False,
        )
    except FileNotFoundError:
        raise Internal(f"{argv[0]} is not installed on this node") from None
    except subprocess.TimeoutExpired:
        raise Unavailable(f"{argv[0]} did not finish within {timeout:g}s and was killed") from None
    log.debug("tool ran", argv=argv, returncode=result.returncode)
    if check and result.returncode != 0:
        raise error(f"{' '.join(argv)} failed: {tool_message(result)}")
    return result
