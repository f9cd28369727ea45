"""Which Oxide release the simulator plays (``--release vN``, 15..22): version rules, slots, shapes.

Why a table: racks in the field run releases from v15 on, and the plugin must find out from the
rack's own answers which generation it talks to. Two generations matter for storage:

* up to v17 the API is unversioned (Nexus ignores the ``api-version`` header), DiskCreate takes
  ``disk_source`` at its top level, the Disk view has no ``disk_type`` or ``read_only``, and an
  instance takes 8 disks (boot disk counted);
* since v18 the API is versioned (a header naming a version newer than the rack's is a 400),
  DiskCreate takes ``disk_backend`` (distributed or local), disks can be read-only, and an
  instance takes 12 disks (boot disk counted, cloud-init disk not).

Views are built once, in the newest shape, and cut down here to what the played release sends
(``downgrade``), so the rules and the records stay release-neutral. The small view differences
inside a generation (v15/v16 lack ``Instance.cpu_platform`` and ``CurrentUser.silo_admin``/
``fleet_viewer``) are followed too, since the conformance check holds old-release traffic
against that release's document. v18/v19 differ from the newest document only in wording and in
fields the plugin does not read; they are served in the newest shape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

OLDEST, NEWEST = 15, 22


@dataclass(frozen=True)
class Release:
    """One Oxide release as the simulator plays it."""

    number: int
    #: The newest API version its Nexus serves; None for the unversioned releases.
    api_version: str | None

    @property
    def name(self) -> str:
        return f"v{self.number}"

    @property
    def versioned(self) -> bool:
        """Whether Nexus honours the ``api-version`` header (v18 and later)."""
        return self.number >= 18

    @property
    def max_disks(self) -> int:
        """Disks per instance, boot disk counted."""
        return 12 if self.versioned else 8

    @property
    def disk_backend(self) -> bool:
        """DiskCreate takes ``disk_backend`` (with local disks and read-only sources)."""
        return self.versioned


#: Newest API version served, per versioned release (omicron release tags).
_API_VERSIONS = {
    18: "2026021301.0.0",
    19: "2026032500.0.0",
    20: "2026060800.0.0",
    21: "2026061000.0.0",
    22: "2026073100.0.0",
}


def release(number: int) -> Release:
    if not OLDEST <= number <= NEWEST:
        raise ValueError(f"release must be between v{OLDEST} and v{NEWEST}, got v{number}")
    return Release(number, _API_VERSIONS.get(number))


def parse_release(text: str) -> Release:
    """``v17`` or ``17``."""
    raw = text.strip().lower().removeprefix("v")
    if not raw.isdigit():
        raise ValueError(f"expected a release like v17, got {text!r}")
    return release(int(raw))


# ----- downgrading views --------------------------------------------------------------------


def _strip(view: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in view.items() if k not in keys}


def _disk(rel: Release, view: dict[str, Any]) -> dict[str, Any]:
    return view if rel.versioned else _strip(view, "disk_type", "read_only")


def _instance(rel: Release, view: dict[str, Any]) -> dict[str, Any]:
    if rel.versioned:
        return view
    if rel.number >= 17:
        return _strip(view, "enable_jumbo_frames")
    return _strip(view, "enable_jumbo_frames", "cpu_platform")


def _user(rel: Release, view: dict[str, Any]) -> dict[str, Any]:
    if rel.versioned:
        return view
    dropped = ["time_created", "time_modified"]
    if rel.number < 17:
        dropped += ["silo_admin", "fleet_viewer"]
    return _strip(view, *dropped)


_View = Callable[[Release, dict[str, Any]], dict[str, Any]]

#: Which view each route answers with (a results page of it for the list routes).
_ROUTE_VIEWS: dict[str, _View] = {
    "/v1/me": _user,
    "/v1/disks": _disk,
    "/v1/disks/{disk}": _disk,
    "/v1/instances": _instance,
    "/v1/instances/{instance}": _instance,
    "/v1/instances/{instance}/start": _instance,
    "/v1/instances/{instance}/stop": _instance,
    "/v1/instances/{instance}/disks": _disk,
    "/v1/instances/{instance}/disks/attach": _disk,
    "/v1/instances/{instance}/disks/detach": _disk,
}


def downgrade(rel: Release, template: str, body: Any) -> Any:
    """The answer ``body`` of route ``template`` as release ``rel`` shapes it."""
    shape = _ROUTE_VIEWS.get(template)
    if shape is None or not isinstance(body, dict):
        return body
    if isinstance(body.get("items"), list) and "next_page" in body:
        return {**body, "items": [shape(rel, item) for item in body["items"]]}
    if "id" in body:
        return shape(rel, body)
    return body  # an error body
