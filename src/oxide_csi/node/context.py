"""What the node learns from the controller through ``publish_context`` and ``volume_context``.

The node holds no credentials, so these maps are all it knows about a volume besides the
devices it sees. The keys live in :mod:`oxide_csi.volume_contract`, which the controller's
servicer writes them from too, so the node reads them without loading the controller package
or, through it, the Oxide client.

Defaults lean to safety: a volume whose context does not say it was created blank is never
formatted, and a serial that is missing is an argument error, not a reason to pick a device.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from oxide_csi.errors import InvalidArgument
from oxide_csi.node.device_identity import check_expected_serial
from oxide_csi.volume_contract import CTX_FS_TYPE, CTX_READ_ONLY, CTX_SERIAL, CTX_SOURCE

#: The only ``source`` that allows formatting: the controller created the disk empty.
SOURCE_BLANK = "blank"


@dataclass(frozen=True)
class VolumeFacts:
    """The node's view of one volume, from a request's two context maps."""

    serial: str
    #: The controller created the disk blank (not from a snapshot or another volume).
    known_new: bool
    #: The filesystem the StorageClass asked for at creation ("" when it did not say).
    fs_type: str
    #: An Oxide read-only disk: mounted read-only, never written.
    read_only: bool = False


def expected_serial(publish_context: Mapping[str, str], volume_context: Mapping[str, str]) -> str:
    """The device serial to look for: ``publish_context`` first, ``volume_context`` second."""
    raw = publish_context.get(CTX_SERIAL) or volume_context.get(CTX_SERIAL)
    if not raw:
        raise InvalidArgument(
            f"neither publish_context nor volume_context carries {CTX_SERIAL}; "
            "was the volume published to this node by this plugin's controller?"
        )
    return check_expected_serial(raw)


def volume_facts(
    publish_context: Mapping[str, str], volume_context: Mapping[str, str]
) -> VolumeFacts:
    fs_type = volume_context.get(CTX_FS_TYPE, "").strip().lower()
    return VolumeFacts(
        serial=expected_serial(publish_context, volume_context),
        # publish_context comes from our controller alone; volume_context of a static
        # PersistentVolume is whatever its author wrote, so it never decides for a formatting
        known_new=(publish_context.get(CTX_SOURCE) or volume_context.get(CTX_SOURCE))
        == SOURCE_BLANK,
        fs_type=fs_type,
        read_only="true" in (publish_context.get(CTX_READ_ONLY), volume_context.get(CTX_READ_ONLY)),
    )
