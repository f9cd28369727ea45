"""Small helpers for asserting on gRPC outcomes, shared by the controller and node tests."""

from __future__ import annotations

from typing import Any

import grpc


async def error_of(call: Any) -> grpc.aio.AioRpcError:
    """The error an awaited call fails with (the test fails if it succeeds)."""
    try:
        await call
    except grpc.aio.AioRpcError as exc:
        return exc
    raise AssertionError("the call succeeded")


async def code_of(call: Any) -> grpc.StatusCode:
    """The status code an awaited call fails with (the test fails if it succeeds)."""
    code: grpc.StatusCode = (await error_of(call)).code()
    return code
