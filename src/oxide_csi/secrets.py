"""Secret values and their redaction.

Why one registry: a secret can leak through many doors (a log line, an exception text, a gRPC
status message, a metric label). Every value the plugin knows to be secret -- the Oxide token,
and each ``csi_secret`` value seen in a request -- is registered here once, and every door calls
:func:`scrub` on its way out. Patterns catch the shapes of secrets we were never told about
(``Bearer ...`` headers and Oxide API tokens).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

REDACTED = "<redacted>"

# Oxide API tokens start with "oxide-token-"; Authorization headers carry "Bearer <token>".
_PATTERNS = (
    re.compile(r"oxide-token-[A-Za-z0-9_\-\.]+"),
    re.compile(r"(?i)(bearer\s+)[A-Za-z0-9_\-\.=:+/]+"),
)
# Values shorter than this are not registered: scrubbing "a" everywhere would mangle logs and
# such values carry no meaningful secrecy anyway.
_MIN_SECRET_LEN = 4


class Secret:
    """A string that never shows itself in ``repr``/``str``; call :meth:`reveal` to use it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        register(value)

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return f"Secret({REDACTED})"

    __str__ = __repr__


_lock = threading.Lock()
_known: set[str] = set()


def register(value: str) -> None:
    """Remember ``value`` as secret so that :func:`scrub` removes it from any text."""
    if value and len(value) >= _MIN_SECRET_LEN:
        with _lock:
            _known.add(value)


def scrub(text: str) -> str:
    """Return ``text`` with every registered secret and every secret-shaped token replaced."""
    with _lock:
        known = sorted(_known, key=len, reverse=True)
    for value in known:
        if value in text:
            text = text.replace(value, REDACTED)
    text = _PATTERNS[0].sub(REDACTED, text)
    return _PATTERNS[1].sub(lambda m: m.group(1) + REDACTED, text)


def scrub_value(value: Any) -> Any:
    """Scrub strings inside arbitrarily nested dicts, lists and tuples (for structured logs)."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, Mapping):
        return {k: scrub_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(scrub_value(v) for v in value)
    if isinstance(value, BaseException):
        return scrub(f"{type(value).__name__}: {value}")
    return value


def read_token_file(path: Path) -> str:
    """The token a file holds (surrounding whitespace dropped); ValueError naming the file,
    never its content, when it cannot be read or is not one non-empty line."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read the token file {path}: {type(exc).__name__}") from None
    if not token or any(c in token for c in "\r\n"):
        raise ValueError(f"the token file {path} must hold one non-empty line")
    return token
