"""CSI Identity service: who the plugin is, what it offers, and whether it is ready."""

from __future__ import annotations

from typing import Any

import grpc

from oxide_csi import DRIVER_NAME, __version__
from oxide_csi.csi_v1 import csi_pb2, csi_pb2_grpc

_Service = csi_pb2.PluginCapability.Service


class IdentityServicer(csi_pb2_grpc.IdentityServicer):
    """Answers from configuration alone, Probe included.

    Probe is liveness (the livenessprobe sidecar fails on ``ready: false``), so it says only
    that the process serves: an unreachable Oxide API must not restart the controller (see
    :mod:`oxide_csi.backend_health`, which reports it instead).

    Capabilities are only those that are true: CONTROLLER_SERVICE when the controller runs,
    and VOLUME_ACCESSIBILITY_CONSTRAINTS always (nodes that must never be power-cycled are kept
    apart by topology, see :mod:`oxide_csi.servicers.topology`); no online expansion, because
    Oxide cannot resize a disk.
    """

    def __init__(self, controller: bool) -> None:
        self._controller = controller

    def register(self, server: grpc.aio.Server) -> None:
        """Add this servicer to ``server``; the generated stubs stay inside the servicers."""
        csi_pb2_grpc.add_IdentityServicer_to_server(self, server)

    async def GetPluginInfo(
        self, request: csi_pb2.GetPluginInfoRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> csi_pb2.GetPluginInfoResponse:
        return csi_pb2.GetPluginInfoResponse(name=DRIVER_NAME, vendor_version=__version__)

    async def GetPluginCapabilities(
        self,
        request: csi_pb2.GetPluginCapabilitiesRequest,
        context: grpc.aio.ServicerContext[Any, Any],
    ) -> csi_pb2.GetPluginCapabilitiesResponse:
        caps = [
            csi_pb2.PluginCapability(
                service=_Service(type=_Service.VOLUME_ACCESSIBILITY_CONSTRAINTS)
            )
        ]
        if self._controller:
            caps.append(
                csi_pb2.PluginCapability(service=_Service(type=_Service.CONTROLLER_SERVICE))
            )
        return csi_pb2.GetPluginCapabilitiesResponse(capabilities=caps)

    async def Probe(
        self, request: csi_pb2.ProbeRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> csi_pb2.ProbeResponse:
        response = csi_pb2.ProbeResponse()
        response.ready.value = True  # answering at all is the proof
        return response
