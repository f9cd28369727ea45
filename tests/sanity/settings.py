"""What the suite is pointed at, read from environment variables.

Why environment variables and not pytest options: pytest only lets an "initial" conftest add
command line options, and ``tests/sanity/conftest.py`` is not one when the whole tree is run
(as CI does). Environment variables work however the suite is started.

- ``OXIDE_CSI_SANITY_ENDPOINT``: ``unix:///path`` or ``host:port`` of a running driver; when
  unset, the suite starts ``oxide-csi dev`` in a temporary directory.
- ``OXIDE_CSI_SANITY_STAGING_DIR`` / ``..._TARGET_DIR``: base directories (on the driver's
  machine, which must be this machine) under which each test gets its own staging and target
  paths. Default: inside the dev driver's kubelet directory.
- ``OXIDE_CSI_SANITY_VOLUME_SIZE``: bytes, or with a ``Ki``/``Mi``/``Gi``/``Ti`` suffix (1Gi).
- ``OXIDE_CSI_SANITY_PARAMETERS``: JSON object of CreateVolume parameters ({}).
- ``OXIDE_CSI_SANITY_SECRETS``: JSON object of secrets, sent with every request that has a
  ``secrets`` field ({}). Never printed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "OXIDE_CSI_SANITY_"
_UNITS = {"": 1, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40}
_SIZE_RE = re.compile(r"^\s*(\d+)\s*(Ki|Mi|Gi|Ti)?\s*$")


class SettingsError(ValueError):
    """A malformed setting; the message names the variable, never a secret's value."""


@dataclass(frozen=True)
class SanityConfig:
    endpoint: str | None = None
    staging_dir: Path | None = None
    target_dir: Path | None = None
    volume_size: int = 1 << 30
    parameters: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SanityConfig:
        def get(name: str) -> str | None:
            value = env.get(PREFIX + name, "").strip()
            return value or None

        staging, target = get("STAGING_DIR"), get("TARGET_DIR")
        size = get("VOLUME_SIZE")
        return cls(
            endpoint=get("ENDPOINT"),
            staging_dir=_absolute(staging, "STAGING_DIR") if staging else None,
            target_dir=_absolute(target, "TARGET_DIR") if target else None,
            volume_size=parse_size(size) if size else 1 << 30,
            parameters=_string_map(get("PARAMETERS"), "PARAMETERS", show=True),
            secrets=_string_map(get("SECRETS"), "SECRETS", show=False),
        )


def parse_size(text: str) -> int:
    match = _SIZE_RE.match(text)
    if not match or int(match.group(1)) <= 0:
        raise SettingsError(f"{PREFIX}VOLUME_SIZE must be a positive size like 1Gi, got {text!r}")
    return int(match.group(1)) * _UNITS[match.group(2) or ""]


def _absolute(text: str, name: str) -> Path:
    path = Path(text)
    if not path.is_absolute():
        raise SettingsError(f"{PREFIX}{name} must be an absolute path, got {text!r}")
    return path


def _string_map(text: str | None, name: str, *, show: bool) -> dict[str, str]:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        shown = f": {exc}" if show else ""
        raise SettingsError(f"{PREFIX}{name} is not valid JSON{shown}") from None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise SettingsError(f"{PREFIX}{name} must be a JSON object of strings to strings")
    return dict(value)
