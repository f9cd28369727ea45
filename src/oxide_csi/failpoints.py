"""Crash injection for tests of crash safety: ``OXIDE_CSI_FAILPOINTS=name1,name2``.

Why SIGKILL and not an exception: the property under test is what survives a process that dies
without unwinding -- no ``finally``, no ``close()``, no flushed buffers -- exactly as it would
under an OOM kill or a node failure. Only the durable record store may save us, so the failpoint
must give Python no chance to clean up.

The variable is read at every call (a handful of calls per attach cycle, negligible) so a test
can set it in a child's environment without any import-order games. Unset, it costs one
``os.environ`` lookup. Never set it in production.
"""

from __future__ import annotations

import os
import signal

ENV = "OXIDE_CSI_FAILPOINTS"

#: The failpoints the attach coordinator places, in the order a cycle passes them.
ATTACH_AFTER_RECORD = "attach.after_record"
ATTACH_AFTER_STOP = "attach.after_stop"
ATTACH_AFTER_APPLY_ONE = "attach.after_apply_one"
ATTACH_BEFORE_START = "attach.before_start"
#: Graceful power-off: the request to the node plugin is written, nothing waited for yet.
POWER_OFF_AFTER_REQUEST = "poweroff.after_request"

#: The node's failpoints in NodeStageVolume: a new disk formatted but not yet mounted, and
#: mounted but the call not yet answered.
STAGE_AFTER_FORMAT = "stage.after_format"
STAGE_AFTER_MOUNT = "stage.after_mount"


def enabled(name: str) -> bool:
    """Whether failpoint ``name`` is switched on in this process's environment."""
    raw = os.environ.get(ENV, "")
    return name in {part.strip() for part in raw.split(",") if part.strip()}


def failpoint(name: str) -> None:
    """Kill this process with SIGKILL if ``name`` is enabled; otherwise do nothing.

    A line goes to stderr first (unbuffered ``os.write``) so the test can tell which failpoint
    fired rather than guessing from an exit status.
    """
    if not enabled(name):
        return
    os.write(2, f"failpoint {name} hit, killing pid {os.getpid()}\n".encode())
    os.kill(os.getpid(), signal.SIGKILL)
