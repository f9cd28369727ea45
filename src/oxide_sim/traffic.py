"""The traffic log: one JSON object per /v1 request, for the OpenAPI conformance check.

Appended under a lock so concurrent requests never interleave lines. The Authorization header
is replaced by ``Bearer <redacted>`` before anything is written: the log must never hold the
token.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any


def redact_headers(headers: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        if key == "authorization":
            scheme = value.split(" ", 1)[0] if value else ""
            out[key] = f"{scheme or 'Bearer'} <redacted>"
        else:
            out[key] = value
    return out


class TrafficLog:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def write(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, separators=(",", ":"), sort_keys=False)
        with self._lock, open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line + "\n")
