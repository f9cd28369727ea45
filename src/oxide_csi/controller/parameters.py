"""StorageClass parameters and capacity: validated once, with the rules Oxide enforces.

Unknown parameters are rejected (INVALID_ARGUMENT) instead of ignored, so a typo in a
StorageClass fails the first claim loudly rather than silently provisioning something else.
Keys under ``csi.storage.k8s.io/`` belong to Kubernetes (the provisioner adds the PVC's name and
namespace there); they are accepted and not interpreted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from oxide_csi.errors import InvalidArgument, OutOfRange
from oxide_csi.volume_contract import FS_TYPES

GIB = 1 << 30
MIN_BYTES = 1 * GIB
MAX_BYTES = 1023 * GIB
BLOCK_SIZES = (512, 2048, 4096)
DEFAULT_FS = "ext4"

PARAM_BLOCK_SIZE = "blockSize"
#: Added by external-provisioner's ``--extra-create-metadata``.
PARAM_PVC_NAME = "csi.storage.k8s.io/pvc/name"
PARAM_PVC_NAMESPACE = "csi.storage.k8s.io/pvc/namespace"
PARAM_FS_TYPE = "fsType"
KUBERNETES_PREFIX = "csi.storage.k8s.io/"
_KNOWN = (PARAM_BLOCK_SIZE, PARAM_FS_TYPE)


@dataclass(frozen=True)
class VolumeParameters:
    block_size: int = 4096
    fs_type: str = ""  # empty: the node's default (ext4), or what the capability names
    pvc: str = ""  # namespace/name of the claim, when the provisioner tells it


def parse_parameters(raw: Mapping[str, str]) -> VolumeParameters:
    unknown = sorted(k for k in raw if k not in _KNOWN and not k.startswith(KUBERNETES_PREFIX))
    if unknown:
        raise InvalidArgument(
            f"unknown parameter(s) {', '.join(unknown)}; known: {', '.join(_KNOWN)}"
        )
    block_size = 4096
    if PARAM_BLOCK_SIZE in raw:
        text = raw[PARAM_BLOCK_SIZE].strip()
        if not text.isdigit() or int(text) not in BLOCK_SIZES:
            raise InvalidArgument(f"{PARAM_BLOCK_SIZE} must be one of 512, 2048, 4096")
        block_size = int(text)
    fs_type = raw.get(PARAM_FS_TYPE, "").strip().lower()
    if fs_type and fs_type not in FS_TYPES:
        raise InvalidArgument(f"{PARAM_FS_TYPE} must be one of {', '.join(FS_TYPES)}")
    pvc_ns, pvc_name = raw.get(PARAM_PVC_NAMESPACE, ""), raw.get(PARAM_PVC_NAME, "")
    pvc = f"{pvc_ns}/{pvc_name}" if pvc_ns and pvc_name else ""
    return VolumeParameters(block_size=block_size, fs_type=fs_type, pvc=pvc)


def round_capacity(required: int, limit: int, floor: int = MIN_BYTES) -> int:
    """The disk size for a capacity range: whole GiB, at least ``floor`` (e.g. a snapshot's size).

    CSI: 0 means "unset" for both bounds. Anything the range cannot admit within Oxide's
    1..1023 GiB is OUT_OF_RANGE.
    """
    if required < 0 or limit < 0:
        raise InvalidArgument("capacity range bounds must not be negative")
    if limit and required > limit:
        raise InvalidArgument("required_bytes exceeds limit_bytes")
    size = max(required, floor, MIN_BYTES)
    size = -(-size // GIB) * GIB
    if limit and size > limit:
        raise OutOfRange(
            f"no whole-GiB size of at least {max(floor, MIN_BYTES)} bytes fits the limit "
            f"of {limit} bytes"
        )
    if size > MAX_BYTES:
        raise OutOfRange(f"Oxide disks are at most 1023 GiB; {size} bytes requested")
    return size


def fits(size: int, required: int, limit: int) -> bool:
    """Whether an existing disk of ``size`` satisfies a capacity range (for idempotency)."""
    return size >= required and (not limit or size <= limit)
