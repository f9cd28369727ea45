"""The single server interceptor for everything that every call shares.

For each unary call it: binds the call's identifying fields (volume, node, snapshot ids) to the
log context; registers the request's ``csi_secret`` values so they can never be logged; turns the
plugin's exceptions into status codes through :mod:`oxide_csi.server.error_codes`; turns anything
unexpected into INTERNAL with an error id that is logged with its traceback (so no call ever ends
in UNKNOWN); scrubs secrets from every status message; and writes one structured log line per
call with method, code and duration. Metrics observers can hook in through ``on_call``.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeAlias, cast

import grpc
import structlog
from google.protobuf.message import Message

from oxide_csi import secrets
from oxide_csi.server import redaction
from oxide_csi.server.error_codes import code_for

log = structlog.get_logger("oxide_csi.grpc")

CallObserver = Callable[[str, str, float], None]
#: Turns an exception of a lower layer into a domain error before the table is read (the
#: controller's Oxide-error translation); returns anything else unchanged.
ErrorTranslator = Callable[[Exception], Exception]
# Generic only in grpc's type stubs, not at runtime: these aliases exist for the type checker.
Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
Handler: TypeAlias = "Callable[[Any, Context], Awaitable[Any]]"
MethodHandler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"


class CallInterceptor(grpc.aio.ServerInterceptor):
    """Logging, error mapping and redaction for every unary-unary method."""

    def __init__(
        self, on_call: CallObserver | None = None, translate: ErrorTranslator | None = None
    ) -> None:
        self._on_call = on_call
        self._translate = translate

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[MethodHandler | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> MethodHandler | None:
        handler = await continuation(handler_call_details)
        if handler is None or handler.unary_unary is None:
            return handler  # streaming methods (health Watch) pass through untouched
        method = str(handler_call_details.method)
        wrapped = self._wrap(method, cast(Handler, handler.unary_unary))
        return grpc.unary_unary_rpc_method_handler(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _wrap(self, method: str, inner: Handler) -> Handler:
        short = method.rsplit("/", 1)[-1]

        async def call(request: Any, context: Context) -> Any:
            started = time.monotonic()
            fields: dict[str, Any] = {}
            if isinstance(request, Message):
                redaction.register_secrets(request)
                fields = redaction.id_fields(request)
            code = grpc.StatusCode.OK
            extra: dict[str, Any] = {}
            try:
                return await inner(request, context)
            except asyncio.CancelledError:
                code = grpc.StatusCode.CANCELLED
                raise
            except grpc.aio.AbortError:
                code = _aborted_code(context)  # a servicer aborted itself
                raise
            except Exception as raised:
                exc = raised if self._translate is None else self._translate(raised)
                mapped = code_for(exc)
                if mapped is None:
                    error_id = uuid.uuid4().hex[:12]
                    code = grpc.StatusCode.INTERNAL
                    message = f"internal error (error id {error_id})"
                    extra = {"error_id": error_id, "exc_info": exc}
                else:
                    code = mapped
                    message = secrets.scrub(str(exc)) or type(exc).__name__
                    extra = {"error": message}
                await context.abort(code, message)
            finally:
                seconds = time.monotonic() - started
                level = "info" if code in _QUIET_CODES else "warning"
                if code == grpc.StatusCode.INTERNAL:
                    level = "error"
                getattr(log, level)(
                    "grpc call",
                    method=short,
                    code=code.name,
                    duration_ms=round(seconds * 1000, 2),
                    **fields,
                    **extra,
                )
                if log.is_enabled_for(10) and isinstance(request, Message):  # DEBUG
                    log.debug("grpc request", method=short, request=redaction.redacted(request))
                if self._on_call is not None:
                    self._on_call(short, code.name, seconds)

        return call


def _aborted_code(context: Context) -> grpc.StatusCode:
    """The code a servicer aborted with (grpc's stubs claim it is never None; it can be)."""
    code: grpc.StatusCode | None = context.code()
    return code if code is not None else grpc.StatusCode.INTERNAL


#: Outcomes that are part of normal operation and deserve no warning in the logs.
_QUIET_CODES = frozenset({grpc.StatusCode.OK, grpc.StatusCode.NOT_FOUND})
