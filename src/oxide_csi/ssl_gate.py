"""Keeping OpenSSL out of a node plugin: the switch that the console script (``launch``) sets.

Importing asyncio imports Python's ``ssl`` module, and with it OpenSSL: about 4 MB of resident
memory in a process that is otherwise about 45 MB (``bench/node_memory.py``), paid on every node
of a cluster. A node plugin has no use for it: it serves gRPC on a unix socket (grpc carries its
own TLS library) and talks to nobody. So when the command line asks for ``serve`` in node mode,
``ssl`` is marked absent before anything imports asyncio, which asyncio tolerates (it then
offers no TLS of its own). The exception is a node with graceful power-off through Kubernetes
(:func:`speaks_tls`): its heartbeat and watch speak TLS to the API server through asyncio.

The decision is read from the raw arguments and environment because it must come before the
CLI's own imports. ``allow_ssl`` lifts the mark once the parsed configuration is known, should it
need TLS after all (the metrics endpoint's library imports ``ssl``; the controller's Oxide
client speaks HTTPS through the ``ssl`` module directly), so a wrong guess costs memory, never a
failure.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from types import ModuleType

#: ``sys.modules`` as the import system reads it: ``None`` marks a module as unavailable.
_MODULES: dict[str, ModuleType | None] = sys.modules  # type: ignore[assignment]


def serves_node_only(argv: Sequence[str], env: Mapping[str, str]) -> bool:
    """Whether ``argv`` (without the program name) is ``serve`` in node mode; the flag wins
    over ``$CSI_MODE`` and a later flag over an earlier one, as argparse has it."""
    if list(argv[:1]) != ["serve"]:
        return False
    return _setting(argv, "--mode", env.get("CSI_MODE")) == "node"


def speaks_tls(argv: Sequence[str], env: Mapping[str, str]) -> bool:
    """Whether a node plugin started so speaks TLS itself: with graceful power-off through
    Kubernetes, its heartbeat and watch reach the API server (``kube/lean_client.py``)
    through asyncio's own TLS, which asyncio sets up only if ``ssl`` is there when asyncio is
    first imported -- opening the gate later would be too late for it."""
    switch = env.get("OXIDE_CSI_GRACEFUL_POWER_OFF", "").strip().lower()
    graceful = "--graceful-power-off" in argv or switch in ("1", "true", "yes", "on")
    backend = _setting(argv, "--state-backend", env.get("OXIDE_CSI_STATE_BACKEND"))
    return graceful and backend == "kubernetes"


def _setting(argv: Sequence[str], flag: str, default: str | None) -> str | None:
    """The value of ``flag`` as argparse reads it (``--flag V`` or ``--flag=V``, the last
    wins), else ``default``."""
    value = default
    for i, arg in enumerate(argv):
        if arg == flag and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith(flag + "="):
            value = arg.partition("=")[2]
    return value


def block_ssl() -> None:
    """Make ``import ssl`` fail (asyncio then does without), unless it is already loaded."""
    _MODULES.setdefault("ssl", None)


def allow_ssl() -> None:
    """Undo :func:`block_ssl`: the next ``import ssl`` loads it as usual."""
    if "ssl" in _MODULES and _MODULES["ssl"] is None:
        del _MODULES["ssl"]
