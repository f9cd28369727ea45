"""Turn CSI requests into loggable dictionaries without their secrets.

The CSI specification marks every secret-bearing field with the ``csi_secret`` field option.
Reading that option from the message descriptors, rather than keeping a list of field names,
means a secret field added to a future spec version is redacted without a code change. Each
secret value found is also registered with :mod:`oxide_csi.secrets`, so it is scrubbed even if
a later error message repeats it.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from oxide_csi import secrets
from oxide_csi.csi_v1 import csi_pb2

#: Request fields worth a column of their own in every call's log line.
ID_FIELDS = ("volume_id", "node_id", "snapshot_id", "source_volume_id", "name")


def _is_secret(field: Any) -> bool:
    """Whether the field carries the ``csi_secret`` option (``Any``: upb and pure descriptors)."""
    return bool(field.GetOptions().Extensions[csi_pb2.csi_secret])


def _is_map(field: FieldDescriptor) -> bool:
    entry = field.message_type
    return entry is not None and bool(entry.GetOptions().map_entry)


def register_secrets(message: Message) -> None:
    """Register every ``csi_secret`` value in ``message`` (recursively) as a known secret."""
    for field, value in message.ListFields():
        if _is_secret(field):
            if isinstance(value, str):
                secrets.register(value)
            elif hasattr(value, "values"):
                for item in value.values():
                    if isinstance(item, str):
                        secrets.register(item)
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            for item in _messages(field, value):
                register_secrets(item)


def _messages(field: FieldDescriptor, value: Any) -> list[Message]:
    if _is_map(field):
        return [v for v in value.values() if isinstance(v, Message)]
    if field.is_repeated:
        return list(value)
    return [value]


def redacted(message: Message) -> dict[str, Any]:
    """A dict of the set fields of ``message`` with secret fields reduced to their key names."""
    out: dict[str, Any] = {}
    for field, value in message.ListFields():
        if _is_secret(field):
            out[field.name] = (
                {key: secrets.REDACTED for key in value}
                if hasattr(value, "keys")
                else secrets.REDACTED
            )
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            if _is_map(field):
                out[field.name] = {
                    k: redacted(v) if isinstance(v, Message) else v for k, v in value.items()
                }
            elif field.is_repeated:
                out[field.name] = [redacted(item) for item in value]
            else:
                out[field.name] = redacted(value)
        elif field.is_repeated:
            out[field.name] = list(value)
        else:
            out[field.name] = value
    return out


def id_fields(message: Message) -> dict[str, str]:
    """The identifying fields (volume, node, snapshot ids, name) that are set on ``message``."""
    fields = message.DESCRIPTOR.fields_by_name
    found: dict[str, str] = {}
    for name in ID_FIELDS:
        if name in fields and not _is_secret(fields[name]):
            value = getattr(message, name)
            if isinstance(value, str) and value:
                found[name] = value
    return found
