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
import os
import sys
from collections.abc import Iterable
from typing import TextIO

import grpc
from google.protobuf import json_format
from google.protobuf.descriptor import MethodDescriptor
from google.protobuf.message import Message

from oxide_csi.csi_v1 import csi_pb2, csi_pb2_grpc
from oxide_csi.tools.target import TargetError, dev_values, open_channel, resolve_endpoint

EXIT_RPC = 1
EXIT_USAGE = 2


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
