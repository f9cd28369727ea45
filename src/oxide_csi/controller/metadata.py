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
        text = _text(body)
        if self.pvc:
            # The PVC is a courtesy (Events): left out rather than cut when it does not fit.
            with_pvc = _text({**body, "pvc": self.pvc})
            text = with_pvc if len(with_pvc) <= MAX_DESCRIPTION else text
        return text[:MAX_DESCRIPTION]

    @classmethod
    def decode(cls, description: str) -> VolumeMeta | None:
        """The metadata in ``description``, or None for disks this plugin did not make."""
        if not description.startswith(MARKER + " "):
            return None
        try:
            body = json.loads(description[len(MARKER) + 1 :])
        except ValueError:
            return None
        if not isinstance(body, dict) or not isinstance(body.get("name"), str):
            return None
        return cls(
            csi_name=body["name"],
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


def _text(body: dict[str, str]) -> str:
    return f"{MARKER} {json.dumps(body, separators=(',', ':'), sort_keys=True)}"
