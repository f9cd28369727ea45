"""``oxide-csi call SERVICE.METHOD [JSON]``: any CSI RPC by name, JSON in, JSON out.

Why our own: there is no CSI command-line client in Debian or on PyPI any more, and grpcurl
needs the proto file and server reflection (which the plugin does not serve). The generated
stubs already know every method and message, so a call is a name lookup, protobuf's JSON
mapping both ways (field names as in the spec, ``max_entries``; the lowerCamel form is accepted
too) and the status code on failure. Exit codes: 0 success, 1 the RPC failed (code and message
on stderr), 2 a usage error (unknown method, request that is not valid JSON for the message).
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import sys
from collections.abc import Iterable
from typing import TextIO

import grpc
from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message

from oxide_csi.csi_v1 import csi_pb2, csi_pb2_grpc
from oxide_csi.tools.target import TargetError, dev_values, open_channel, resolve_endpoint

EXIT_RPC = 1
EXIT_USAGE = 2
_MAX_DEPTH = 8
_WELL_KNOWN = {
    "google.protobuf.BoolValue": "bool",
    "google.protobuf.Int64Value": "int64 (as a string)",
    "google.protobuf.Timestamp": "time (RFC 3339, e.g. 2026-01-01T00:00:00Z)",
}
_SCALARS = {
    FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_BOOL: "bool",
    FieldDescriptor.TYPE_INT32: "int32",
    FieldDescriptor.TYPE_UINT32: "uint32",
    FieldDescriptor.TYPE_INT64: "int64 (as a string)",
    FieldDescriptor.TYPE_UINT64: "uint64 (as a string)",
    FieldDescriptor.TYPE_DOUBLE: "number",
    FieldDescriptor.TYPE_FLOAT: "number",
    FieldDescriptor.TYPE_BYTES: "bytes (base64)",
}


class UsageError(ValueError):
    """What the user typed cannot become a call (exit code 2)."""


def methods() -> dict[str, MethodDescriptor]:
    """Every CSI method, as ``Service.Method``, in the order of the proto file."""
    return {
        f"{service.name}.{method.name}": method
        for service in csi_pb2.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    }


def find_method(name: str) -> MethodDescriptor:
    """``Identity.GetPluginInfo``; also ``csi.v1.Identity.GetPluginInfo`` and the gRPC path
    ``/csi.v1.Identity/GetPluginInfo``, so a name copied from a log line works as well."""
    table = methods()
    package = csi_pb2.DESCRIPTOR.package + "."
    key = name.strip().lstrip("/").replace("/", ".").removeprefix(package)
    if key in table:
        return table[key]
    close = difflib.get_close_matches(key, table, n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else " (see oxide-csi call --list)"
    raise UsageError(f"unknown method {name!r}{hint}")


def parse_request(method: MethodDescriptor, text: str) -> Message:
    request: Message = getattr(csi_pb2, method.input_type.name)()
    try:
        json_format.Parse(text.strip() or "{}", request)
    except json_format.ParseError as exc:
        raise UsageError(f"request is not a valid {method.input_type.name}: {exc}") from None
    return request


def to_json(message: Message) -> str:
    return json_format.MessageToJson(message, preserving_proto_field_name=True, indent=2)


def invoke(
    channel: grpc.Channel, method: MethodDescriptor, request: Message, timeout: float
) -> Iterable[Message]:
    """The response(s): one for a unary method, each in turn for a server-streaming one."""
    service = method.containing_service.name
    stub = getattr(csi_pb2_grpc, f"{service}Stub")(channel)
    callable_ = getattr(stub, method.name)
    if method.server_streaming:
        yield from callable_(request, timeout=timeout)
    else:
        yield callable_(request, timeout=timeout)


def skeleton(message: Descriptor, depth: int = 0) -> dict[str, object]:
    """The JSON shape of a message: each field with its type, an enum's values, a map as
    ``{KEY: VALUE}``, a repeated field as a one-element list -- what the proto file would
    tell a user who has only this command (``--describe``)."""
    shape: dict[str, object] = {}
    for field in message.fields:
        entry = field.message_type
        if entry is not None and entry.GetOptions().map_entry:
            key, value = entry.fields_by_name["key"], entry.fields_by_name["value"]
            shape[field.name] = {str(_shape(key, depth)): _shape(value, depth)}
        elif field.is_repeated:
            shape[field.name] = [_shape(field, depth)]
        else:
            shape[field.name] = _shape(field, depth)
    return shape


def _shape(field: FieldDescriptor, depth: int) -> object:
    if field.message_type is not None:
        known = _WELL_KNOWN.get(field.message_type.full_name)
        if known is not None:
            return known
        return skeleton(field.message_type, depth + 1) if depth < _MAX_DEPTH else {}
    if field.enum_type is not None:
        return " | ".join(value.name for value in field.enum_type.values)
    return _SCALARS.get(field.type, "value")


def _request_text(arg: str | None, stdin: TextIO) -> str:
    if arg == "-" or (arg is None and not stdin.isatty()):
        return stdin.read()
    return arg or "{}"


def run_call(args: argparse.Namespace) -> int:
    if args.list:
        for name in methods():
            print(name)
        return 0
    try:
        if not args.method:
            raise UsageError("name a method, e.g. Identity.GetPluginInfo (see --list)")
        method = find_method(args.method)
        if args.describe:
            print(json.dumps(skeleton(method.input_type), indent=2))
            return 0
        request = parse_request(method, _request_text(args.request, sys.stdin))
        endpoint = resolve_endpoint(args.endpoint, os.environ, dev_values())
        channel = open_channel(endpoint)
    except (UsageError, TargetError) as exc:
        print(f"oxide-csi call: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    with channel:
        try:
            for response in invoke(channel, method, request, args.timeout):
                print(to_json(response), flush=True)
        except grpc.RpcError as exc:
            code: grpc.StatusCode = exc.code()
            details = exc.details()
            print(f"oxide-csi call: {code.name} (code {code.value[0]}): {details}", file=sys.stderr)
            print(f"oxide-csi call: endpoint {endpoint}", file=sys.stderr)
            return EXIT_RPC
    return 0
