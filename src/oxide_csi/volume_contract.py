"""What the controller and the node agree on about a volume, in the one module both import.

The node holds no credentials and imports nothing of the controller package or the Oxide
client (see DESIGN.md), yet the two sides must agree on a few facts: how a disk's name becomes
the serial the guest sees, which serials belong to disks we created, the keys of the
``volume_context``/``publish_context`` maps that carry what the node learns, and the filesystems
a volume may ask for. Each is defined here once, with no imports of either side.
"""

from __future__ import annotations

import re

#: Width of the NVMe serial number field (Identify Controller, bytes 4..23): the guest sees the
#: first this-many bytes of an Oxide disk's name as the device's serial.
SERIAL_BYTES = 20

#: Every disk the plugin creates is named ``csi-`` plus hex digits of a hash that fill the serial.
DISK_PREFIX = "csi-"
#: How many hash digits follow a prefix as long as :data:`DISK_PREFIX` within the serial.
NAME_HASH_CHARS = SERIAL_BYTES - len(DISK_PREFIX)
_MANAGED_SERIAL_RE = re.compile(rf"^{DISK_PREFIX}[0-9a-f]{{{NAME_HASH_CHARS}}}$")

#: ``volume_context`` / ``publish_context`` keys the controller writes and the node reads.
CTX_DISK_NAME = "oxide.computer/disk-name"
CTX_SERIAL = "oxide.computer/serial"
CTX_SOURCE = "oxide.computer/source"
CTX_FS_TYPE = "oxide.computer/fs-type"
#: "true" for an Oxide read-only disk: the node mounts it read-only, without journal replay.
CTX_READ_ONLY = "oxide.computer/read-only"

#: Filesystems a mount volume may ask for (StorageClass ``fsType`` or the volume capability).
FS_TYPES = ("ext4", "xfs")


def serial_for(disk: str) -> str:
    """The NVMe serial the guest will show for an Oxide disk name."""
    return disk.encode()[:SERIAL_BYTES].decode(errors="ignore")


def is_managed_serial(serial: str) -> bool:
    """True for serials of disks this plugin created (the node uses it to count slots)."""
    return bool(_MANAGED_SERIAL_RE.match(serial.strip()))
