"""What we remember about a volume, kept in the Oxide disk's description.

Oxide disks have no tags or labels and cannot be updated after creation, so the description is
the one durable place for facts the controller needs later: the CSI name (to detect the
astronomically unlikely hash collision), the filesystem the StorageClass asked for, where the
content came from (a blank disk may be formatted; a restored one must never be), and the
PersistentVolumeClaim it was made for (when the provisioner passes it, with
``--extra-create-metadata``), so that every later cycle can tell that PVC in an Event.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

MARKER = "csi.oxide.computer"
#: Nexus limits descriptions; we stay well under it even for the longest CSI names.
MAX_DESCRIPTION = 512


def mark(body: dict[str, str]) -> str:
    """A description that says the plugin wrote it: the marker, then ``body`` as JSON."""
    text = f"{MARKER} {json.dumps(body, separators=(',', ':'), sort_keys=True)}"
    return text[:MAX_DESCRIPTION]


def unmark(description: str) -> dict[str, object] | None:
    """The JSON body of a description :func:`mark` wrote; None for any other description."""
    if not description.startswith(MARKER + " "):
        return None
    try:
        body = json.loads(description[len(MARKER) + 1 :])
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


class Source:
    BLANK = "blank"
    SNAPSHOT = "snapshot"
    VOLUME = "volume"


@dataclass(frozen=True)
class VolumeMeta:
    csi_name: str
    fs_type: str = ""
    source: str = Source.BLANK
    source_id: str = ""
    #: ``namespace/name`` of the PVC, "" when unknown (or too long to keep).
    pvc: str = ""

    def encode(self) -> str:
        body = {"name": self.csi_name, "fs": self.fs_type, "src": self.source}
        if self.source_id:
            body["src_id"] = self.source_id
        if self.pvc:
            # The PVC is a courtesy (Events): left out rather than cut when it does not fit.
            with_pvc = mark({**body, "pvc": self.pvc})
            if len(with_pvc) < MAX_DESCRIPTION:
                return with_pvc
        return mark(body)

    @classmethod
    def decode(cls, description: str) -> VolumeMeta | None:
        """The metadata in ``description``, or None for disks this plugin did not make."""
        body = unmark(description)
        if body is None or not isinstance(body.get("name"), str):
            return None
        return cls(
            csi_name=str(body["name"]),
            fs_type=str(body.get("fs", "")),
            source=str(body.get("src", Source.BLANK)),
            source_id=str(body.get("src_id", "")),
            pvc=str(body.get("pvc", "")),
        )

    @property
    def pvc_ref(self) -> tuple[str, str] | None:
        """``(namespace, name)`` of the PVC, or None."""
        namespace, sep, name = self.pvc.partition("/")
        return (namespace, name) if sep and namespace and name else None


#: What follows the marker in a clone's temporary snapshot's description.
_CLONE_KIND = "clone"


def clone_description(source_disk_id: str, target_csi_name: str) -> str:
    """The description of a clone's temporary snapshot: the marker says the plugin made it.

    The clone sweep deletes a snapshot only when both its name and this description say it is
    such a snapshot, so a user's snapshot that happens to be named like one is never touched.
    """
    return mark({"kind": _CLONE_KIND, "of": source_disk_id, "into": target_csi_name})


def is_clone_description(description: str) -> bool:
    """Whether ``description`` is one :func:`clone_description` wrote."""
    body = unmark(description)
    return body is not None and body.get("kind") == _CLONE_KIND
