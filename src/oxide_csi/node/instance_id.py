"""The Oxide instance's UUID as the guest sees it: a node id that needs no credentials.

Oxide's hypervisor puts the instance id into the SMBIOS system UUID, which Linux shows at
``/sys/class/dmi/id/product_uuid`` (readable by root only). The controller can then address the
instance by id without the node ever talking to the Oxide API.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from oxide_csi.errors import Unavailable

PRODUCT_UUID = Path("class/dmi/id/product_uuid")


def read_instance_id(sysfs_root: Path = Path("/sys")) -> str | None:
    """The instance UUID in canonical lower-case form, or None where DMI has none.

    None when the file is absent (no DMI: containers without /sys/class/dmi, some
    architectures) or does not hold a UUID; :class:`Unavailable` when it exists but cannot be
    read (not root), since then the answer is unknown rather than "none".
    """
    path = sysfs_root / PRODUCT_UUID
    try:
        text = path.read_text(errors="replace").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise Unavailable(f"cannot read {path}: {exc.strerror}") from None
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None
