"""StorageClass parameters and capacity: validated once, with the rules Oxide enforces.

Unknown parameters are rejected (INVALID_ARGUMENT) instead of ignored, so a typo in a
StorageClass fails the first claim loudly rather than silently provisioning something else.
Keys under ``csi.storage.k8s.io/`` belong to Kubernetes (the provisioner adds the PVC's name and
namespace there); they are accepted and not interpreted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from oxide_csi.config import is_valid_name
from oxide_csi.controller.metadata import Source
from oxide_csi.errors import InvalidArgument, OutOfRange
from oxide_csi.oxide.selectors import is_uuid
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
PARAM_IMAGE = "image"
PARAM_READ_ONLY = "readOnly"
PARAM_DISK_TYPE = "diskType"
KUBERNETES_PREFIX = "csi.storage.k8s.io/"
KNOWN_PARAMETERS = (
    PARAM_BLOCK_SIZE,
    PARAM_FS_TYPE,
    PARAM_IMAGE,
    PARAM_READ_ONLY,
    PARAM_DISK_TYPE,
)
DISK_TYPES = ("distributed", "local")
#: Local disks (sled-local NVMe) always have 4096-byte blocks.
LOCAL_BLOCK_SIZE = 4096


@dataclass(frozen=True)
class VolumeParameters:
    block_size: int = 4096
    fs_type: str = ""  # empty: the node's default (ext4), or what the capability names
    pvc: str = ""  # namespace/name of the claim, when the provisioner tells it
    #: An Oxide image (name or UUID, project or silo image) each new disk is made from.
    image: str = ""
    #: An Oxide read-only disk; only with a snapshot or image source.
    read_only: bool = False
    #: A local (sled-local NVMe) disk instead of a distributed one.
    local: bool = False


def parse_parameters(raw: Mapping[str, str]) -> VolumeParameters:
    """The StorageClass parameters, each checked alone and against the others."""
    base = _parse_basic(raw)
    image = raw.get(PARAM_IMAGE, "").strip()
    if PARAM_IMAGE in raw and not (is_valid_name(image) or is_uuid(image)):
        raise InvalidArgument(f"{PARAM_IMAGE} must be an Oxide image name or UUID, got {image!r}")
    read_only = _boolean(raw, PARAM_READ_ONLY)
    disk_type = raw.get(PARAM_DISK_TYPE, "distributed").strip().lower()
    if disk_type not in DISK_TYPES:
        raise InvalidArgument(f"{PARAM_DISK_TYPE} must be one of {', '.join(DISK_TYPES)}")
    local = disk_type == "local"
    if local and (image or read_only):
        raise InvalidArgument(
            f"{PARAM_DISK_TYPE}: local disks are always blank and writable; drop "
            f"{PARAM_IMAGE if image else PARAM_READ_ONLY}"
        )
    if local and PARAM_BLOCK_SIZE in raw and base.block_size != LOCAL_BLOCK_SIZE:
        raise InvalidArgument(f"local disks have {LOCAL_BLOCK_SIZE}-byte blocks")
    return VolumeParameters(
        block_size=LOCAL_BLOCK_SIZE if local else base.block_size,
        fs_type=base.fs_type,
        image=image,
        pvc=base.pvc,
        read_only=read_only,
        local=local,
    )


def choose_source(params: VolumeParameters, source: str, source_id: str) -> tuple[str, str]:
    """The one source of a new volume: the request's content source or the ``image``
    parameter; read-only needs one of snapshot or image, local disks take none."""
    if params.image:
        if source != Source.BLANK:
            raise InvalidArgument(
                f"the StorageClass names an {PARAM_IMAGE} and the claim a {source} source; a "
                "volume has one source"
            )
        source, source_id = Source.IMAGE, params.image
    if params.read_only and source not in (Source.SNAPSHOT, Source.IMAGE):
        raise InvalidArgument(
            f"{PARAM_READ_ONLY}: a read-only volume needs a snapshot or an {PARAM_IMAGE} to hold "
            "its data (it cannot be written afterwards)"
        )
    if params.local and source != Source.BLANK:
        raise InvalidArgument(
            "local disks are always created blank: Oxide makes them neither from a snapshot "
            "nor as a clone"
        )
    return source, source_id


def _boolean(raw: Mapping[str, str], key: str) -> bool:
    text = raw.get(key, "false").strip().lower()
    if text not in ("true", "false"):
        raise InvalidArgument(f'{key} must be "true" or "false", got {raw[key]!r}')
    return text == "true"


def _parse_basic(raw: Mapping[str, str]) -> VolumeParameters:
    unknown = sorted(
        k for k in raw if k not in KNOWN_PARAMETERS and not k.startswith(KUBERNETES_PREFIX)
    )
    if unknown:
        raise InvalidArgument(
            f"unknown parameter(s) {', '.join(unknown)}; known: {', '.join(KNOWN_PARAMETERS)}"
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
