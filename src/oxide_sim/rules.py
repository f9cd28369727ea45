"""Request-body parsing and the validation rules Nexus applies to disk and snapshot creation.

Body *shape* errors (missing field, bad enum tag, bad ``Name``) are dropshot deserialization
failures: 400 without ``error_code``. Semantic checks (size limits, block-size multiples,
snapshot size) are Nexus ``InvalidValue``/``InvalidRequest`` errors with the wording of
omicron ``nexus/src/app/disk.rs``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from oxide_sim.error_responses import bad_body, invalid_value
from oxide_sim.names import byte_count, check_name, parse_name_or_id, parse_uuid

GIB = 2**30
MIN_DISK_SIZE = GIB
MAX_DISK_SIZE = 1023 * GIB
BLOCK_SIZES = (512, 2048, 4096)
#: Local (sled-local NVMe) disks always have 4096-byte blocks.
LOCAL_BLOCK_SIZE = 4096


@dataclass(frozen=True)
class DiskCreate:
    name: str
    description: str
    size: int
    source: str  # blank | snapshot | image | local
    block_size: int | None = None
    snapshot_id: str | None = None
    image_id: str | None = None
    read_only: bool = False


@dataclass(frozen=True)
class SnapshotCreate:
    name: str
    description: str
    disk: tuple[str, str]


def _obj(body: Any, what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_body(f"invalid type: expected struct {what}")
    return body


def _field(obj: dict[str, Any], key: str) -> Any:
    if key not in obj:
        raise bad_body(f"missing field `{key}`")
    return obj[key]


def _string(obj: dict[str, Any], key: str) -> str:
    value = _field(obj, key)
    if not isinstance(value, str):
        raise bad_body(f"invalid type: expected a string for `{key}`")
    return value


def _name(obj: dict[str, Any]) -> str:
    try:
        return check_name(_field(obj, "name"))
    except ValueError as exc:
        raise bad_body(str(exc)) from None


def _u64(obj: dict[str, Any], key: str) -> int:
    value = _field(obj, key)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**64:
        raise bad_body(f"invalid value for `{key}`: expected u64")
    return value


def parse_disk_create(body: Any, *, disk_backend: bool = True) -> DiskCreate:
    """A DiskCreate body in the played release's shape.

    ``disk_backend`` (v18+): ``{"disk_backend": {"type": "local"}}`` or ``{"type":
    "distributed", "disk_source": ...}``. Before v18 the source sits at the top level as
    ``disk_source`` and knows no ``read_only``; like serde, either shape ignores the other's
    fields, so a body in the wrong shape fails on the missing field.
    """
    obj = _obj(body, "DiskCreate")
    name = _name(obj)
    description = _string(obj, "description")
    size = _u64(obj, "size")
    if not disk_backend:
        source = _obj(_field(obj, "disk_source"), "DiskSource")
        return _parse_source(name, description, size, source, read_only_known=False)
    backend = _obj(_field(obj, "disk_backend"), "DiskBackend")
    btype = backend.get("type")
    if btype == "local":
        return DiskCreate(name, description, size, "local", block_size=LOCAL_BLOCK_SIZE)
    if btype != "distributed":
        raise bad_body(f"unknown variant `{btype}`, expected `local` or `distributed`")
    source = _obj(_field(backend, "disk_source"), "DiskSource")
    return _parse_source(name, description, size, source, read_only_known=True)


def _parse_source(
    name: str, description: str, size: int, source: dict[str, Any], *, read_only_known: bool
) -> DiskCreate:
    stype = source.get("type")
    read_only = source.get("read_only", False) if read_only_known else False
    if not isinstance(read_only, bool):
        raise bad_body("invalid type: expected a boolean for `read_only`")
    if stype in ("blank", "importing_blocks"):
        block_size = _field(source, "block_size")
        if block_size not in BLOCK_SIZES or isinstance(block_size, bool):
            raise bad_body(f"invalid value: {block_size!r}, expected one of 512, 2048, 4096")
        if stype == "importing_blocks":
            raise invalid_value("disk_source", "importing blocks is not supported by the simulator")
        return DiskCreate(name, description, size, "blank", block_size=block_size)
    if stype == "snapshot":
        try:
            sid = parse_uuid(_field(source, "snapshot_id"))
        except ValueError as exc:
            raise bad_body(str(exc)) from None
        return DiskCreate(name, description, size, "snapshot", snapshot_id=sid, read_only=read_only)
    if stype == "image":
        try:
            iid = parse_uuid(_field(source, "image_id"))
        except ValueError as exc:
            raise bad_body(str(exc)) from None
        return DiskCreate(name, description, size, "image", image_id=iid, read_only=read_only)
    raise bad_body(
        f"unknown variant `{stype}`, expected one of `blank`, `snapshot`, `image`, "
        "`importing_blocks`"
    )


def check_disk_size(size: int, block_size: int) -> None:
    """Nexus's size rules, in its order, with its messages."""
    if size % block_size != 0:
        raise invalid_value(
            "size and block_size", f"total size must be a multiple of block size {block_size}"
        )
    if size < MIN_DISK_SIZE:
        raise invalid_value("size", f"total size must be at least {byte_count(MIN_DISK_SIZE)}")
    if size % MIN_DISK_SIZE != 0:
        raise invalid_value("size", f"total size must be a multiple of {byte_count(MIN_DISK_SIZE)}")
    if size > MAX_DISK_SIZE:
        raise invalid_value("size", f"total size must be less than {byte_count(MAX_DISK_SIZE)}")


def parse_snapshot_create(body: Any) -> SnapshotCreate:
    obj = _obj(body, "SnapshotCreate")
    name = _name(obj)
    description = _string(obj, "description")
    try:
        disk = parse_name_or_id(_field(obj, "disk"))
    except ValueError as exc:
        raise bad_body(str(exc)) from None
    return SnapshotCreate(name, description, disk)


def parse_disk_path(body: Any) -> tuple[str, str]:
    """``DiskPath`` body of attach/detach: ``{"disk": NameOrId}``."""
    obj = _obj(body, "DiskPath")
    try:
        return parse_name_or_id(_field(obj, "disk"))
    except ValueError as exc:
        raise bad_body(str(exc)) from None


@dataclass(frozen=True)
class ImageCreate:
    name: str
    description: str
    os: str
    version: str
    snapshot_id: str


def parse_image_create(body: Any) -> ImageCreate:
    """``ImageCreate``: the only source the API has is a snapshot (``{"type": "snapshot"}``)."""
    obj = _obj(body, "ImageCreate")
    name = _name(obj)
    description = _string(obj, "description")
    os_name, version = _string(obj, "os"), _string(obj, "version")
    source = _obj(_field(obj, "source"), "ImageSource")
    if source.get("type") != "snapshot":
        raise bad_body(f"unknown variant `{source.get('type')}`, expected `snapshot`")
    try:
        sid = parse_uuid(_field(source, "id"))
    except ValueError as exc:
        raise bad_body(str(exc)) from None
    return ImageCreate(name, description, os_name, version, sid)
