"""A handle on one CSI driver: its three services, its capabilities, and strict call helpers.

Everything the checks know about a driver comes through here, and only through the CSI
protocol (the generated stubs and grpc). A call that should succeed and does not, or should
fail with a given code and does not, raises :class:`CheckFailed` -- an ``AssertionError`` --
with the RPC name, the code and the driver's message; never the request, which may hold secrets.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import grpc
import pytest

from oxide_csi.csi_v1 import csi_pb2, csi_pb2_grpc
from tests.sanity.settings import SanityConfig

Code = grpc.StatusCode
PluginService = csi_pb2.PluginCapability.Service
ControllerCap = csi_pb2.ControllerServiceCapability.RPC
NodeCap = csi_pb2.NodeServiceCapability.RPC
AccessMode = csi_pb2.VolumeCapability.AccessMode

#: Calls that attach or format may take a while on a real cloud; none should take longer.
DEFAULT_TIMEOUT = 120.0


class CheckFailed(AssertionError):
    """The driver did not do what the CSI specification requires."""


def rpc_error(exc: grpc.RpcError) -> tuple[grpc.StatusCode, str]:
    call: Any = exc
    return call.code(), call.details() or ""


def unique_name(label: str) -> str:
    """A CO-style name that no earlier run used (``sanity-<label>-<12 hex>``)."""
    return f"sanity-{label}-{uuid.uuid4().hex[:12]}"


def mount_capability(
    mode: int = AccessMode.SINGLE_NODE_WRITER, fs_type: str = ""
) -> csi_pb2.VolumeCapability:
    return csi_pb2.VolumeCapability(
        mount=csi_pb2.VolumeCapability.MountVolume(fs_type=fs_type),
        access_mode=AccessMode(mode=mode),  # type: ignore[arg-type]
    )


def block_capability(mode: int = AccessMode.SINGLE_NODE_WRITER) -> csi_pb2.VolumeCapability:
    return csi_pb2.VolumeCapability(
        block=csi_pb2.VolumeCapability.BlockVolume(),
        access_mode=AccessMode(mode=mode),  # type: ignore[arg-type]
    )


class Driver:
    """One driver endpoint. Capabilities and node info are asked once and remembered."""

    def __init__(
        self,
        channel: grpc.Channel,
        config: SanityConfig,
        *,
        staging_dir: Path,
        target_dir: Path,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.config = config
        #: Base directories under which each test gets fresh staging and target paths.
        self.staging_dir = staging_dir
        self.target_dir = target_dir
        self.timeout = timeout
        self.identity = csi_pb2_grpc.IdentityStub(channel)
        self.controller = csi_pb2_grpc.ControllerStub(channel)
        self.node = csi_pb2_grpc.NodeStub(channel)
        self._plugin_caps: set[int] | None = None
        self._controller_caps: set[int] | None = None
        self._node_caps: set[int] | None = None
        self._node_info: csi_pb2.NodeGetInfoResponse | None = None

    # ---- calls ---------------------------------------------------------------------------

    def _method(self, rpc: str) -> Any:
        for stub in (self.identity, self.controller, self.node):
            method = getattr(stub, rpc, None)
            if method is not None:
                return method
        raise ValueError(f"no CSI RPC named {rpc}")

    def _with_secrets(self, request: Any) -> Any:
        """A copy of ``request`` carrying the configured secrets; the caller's request stays
        without them, so no traceback or message of a check can show a secret."""
        if not self.config.secrets or "secrets" not in request.DESCRIPTOR.fields_by_name:
            return request
        copy = type(request)()
        copy.CopyFrom(request)
        copy.secrets.update(self.config.secrets)
        return copy

    def raw(self, rpc: str, request: Any) -> Any:
        """Call ``rpc``; grpc errors propagate unchanged (for cleanup and polling)."""
        return self._method(rpc)(self._with_secrets(request), timeout=self.timeout)

    def future(self, rpc: str, request: Any) -> Any:
        """Start ``rpc`` without waiting (a grpc future; ``.result()`` raises RpcError)."""
        return self._method(rpc).future(self._with_secrets(request), timeout=self.timeout)

    def ok(self, rpc: str, request: Any, why: str = "") -> Any:
        """Call ``rpc``, which must succeed."""
        __tracebackhide__ = True
        try:
            return self.raw(rpc, request)
        except grpc.RpcError as exc:
            code, details = rpc_error(exc)
            context = f" ({why})" if why else ""
            raise CheckFailed(f"{rpc}{context} failed: {code.name}: {details}") from None

    def fails(
        self, expected: Code | Iterable[Code], rpc: str, request: Any, why: str
    ) -> tuple[Any, str]:
        """Call ``rpc``, which must fail with ``expected``.

        Returns ``(response, message)``: the response is not None only when the call
        unexpectedly succeeded (so the caller can clean up what it made before failing);
        ``message`` then says what went wrong. :meth:`expect_error` is the usual entry point.
        """
        __tracebackhide__ = True
        codes = {expected} if isinstance(expected, Code) else set(expected)
        names = " or ".join(sorted(c.name for c in codes))
        try:
            response = self.raw(rpc, request)
        except grpc.RpcError as exc:
            code, details = rpc_error(exc)
            if code in codes:
                return None, ""
            raise CheckFailed(
                f"{rpc} {why}: expected {names}, got {code.name}: {details}"
            ) from None
        return response, f"{rpc} {why}: expected {names}, got OK"

    def expect_error(
        self, expected: Code | Iterable[Code], rpc: str, request: Any, why: str
    ) -> None:
        """For calls that create nothing: must fail with ``expected``."""
        __tracebackhide__ = True
        response, message = self.fails(expected, rpc, request, why)
        if response is not None:
            raise CheckFailed(message)

    # ---- capabilities --------------------------------------------------------------------

    def plugin_capabilities(self) -> set[int]:
        if self._plugin_caps is None:
            reply = self.ok("GetPluginCapabilities", csi_pb2.GetPluginCapabilitiesRequest())
            self._plugin_caps = {
                c.service.type for c in reply.capabilities if c.WhichOneof("type") == "service"
            }
        return self._plugin_caps

    def controller_capabilities(self) -> set[int]:
        if self._controller_caps is None:
            reply = self.ok("ControllerGetCapabilities", csi_pb2.ControllerGetCapabilitiesRequest())
            self._controller_caps = {c.rpc.type for c in reply.capabilities}
        return self._controller_caps

    def node_capabilities(self) -> set[int]:
        if self._node_caps is None:
            reply = self.ok("NodeGetCapabilities", csi_pb2.NodeGetCapabilitiesRequest())
            self._node_caps = {c.rpc.type for c in reply.capabilities}
        return self._node_caps

    def has_controller(self, cap: int) -> bool:
        return self.has_controller_service() and cap in self.controller_capabilities()

    def has_controller_service(self) -> bool:
        return PluginService.CONTROLLER_SERVICE in self.plugin_capabilities()

    def has_node(self, cap: int) -> bool:
        return cap in self.node_capabilities()

    def require_controller(self, *caps: int) -> None:
        """Skip the check unless the driver advertises every one of ``caps``."""
        if not self.has_controller_service():
            pytest.skip("the plugin does not advertise CONTROLLER_SERVICE")
        missing = [ControllerCap.Type.Name(c) for c in caps if not self.has_controller(c)]  # type: ignore[arg-type]
        if missing:
            pytest.skip(f"controller capability not advertised: {', '.join(missing)}")

    def require_node(self, *caps: int) -> None:
        missing = [NodeCap.Type.Name(c) for c in caps if not self.has_node(c)]  # type: ignore[arg-type]
        if missing:
            pytest.skip(f"node capability not advertised: {', '.join(missing)}")

    def node_info(self) -> csi_pb2.NodeGetInfoResponse:
        if self._node_info is None:
            self._node_info = self.ok("NodeGetInfo", csi_pb2.NodeGetInfoRequest())
        return self._node_info

    def node_id(self) -> str:
        node_id = self.node_info().node_id
        if not node_id:
            raise CheckFailed("NodeGetInfo returned an empty node_id")
        return node_id

    # ---- request builders ----------------------------------------------------------------

    def volume_request(
        self,
        name: str,
        *,
        capabilities: list[csi_pb2.VolumeCapability] | None = None,
        required_bytes: int | None = None,
        limit_bytes: int = 0,
        source: csi_pb2.VolumeContentSource | None = None,
    ) -> csi_pb2.CreateVolumeRequest:
        """A CreateVolume request with the configured size and parameters."""
        request = csi_pb2.CreateVolumeRequest(
            name=name,
            capacity_range=csi_pb2.CapacityRange(
                required_bytes=self.config.volume_size
                if required_bytes is None
                else required_bytes,
                limit_bytes=limit_bytes,
            ),
            volume_capabilities=capabilities or [mount_capability()],
            parameters=self.config.parameters,
        )
        if source is not None:
            request.volume_content_source.CopyFrom(source)
        return request
