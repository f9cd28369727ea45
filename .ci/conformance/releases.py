"""Which document an exchange is held against: the played release's.

Why: the simulator plays any Oxide release from v15 on (``--release``), and releases up to v17
have shapes of their own (``disk_source`` at the top of DiskCreate, no ``disk_type`` in the
Disk view). Holding their traffic against the newest document would fail a faithful simulator,
and dropping it from the check would let it drift unseen; so the simulator records the release
with each exchange and each exchange meets its own release's document. Releases v18 and later
share the newest document's shapes for everything the plugin uses (see SOURCE.md), so they,
and entries without a release, meet the newest document.

The older documents live in one folder as ``nexus-vN.json``; a release without a document of
its own is held against the newest older one (v16 against v15: their storage shapes are
identical).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .document import Spec

#: The first release whose Nexus serves a versioned API (and takes ``disk_backend``).
FIRST_VERSIONED_RELEASE = 18
_FILE = re.compile(r"^nexus-v([0-9]+)\.json$")
_RELEASE = re.compile(r"^v([0-9]+)$")


def load_release_specs(folder: Path) -> dict[int, Spec]:
    """The older releases' documents in ``folder``, by release number."""
    found = {}
    for path in sorted(folder.iterdir()):
        match = _FILE.match(path.name)
        if match is not None:
            found[int(match[1])] = Spec.load(path)
    return found


def spec_for(
    entry: Mapping[str, Any], newest: Spec, older: Mapping[int, Spec]
) -> tuple[Spec | None, str | None]:
    """The document for one entry, or None and why there is none."""
    raw = entry.get("release")
    if raw is None:
        return newest, None
    match = _RELEASE.match(str(raw))
    if match is None:
        return None, f"release {raw!r} is not like v17"
    number = int(match[1])
    if number >= FIRST_VERSIONED_RELEASE:
        return newest, None
    candidates = [n for n in older if n <= number]
    if not candidates:
        return None, f"no OpenAPI document for release {raw} (pass --releases)"
    return older[max(candidates)], None
