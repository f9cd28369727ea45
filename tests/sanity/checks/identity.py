"""Identity service: GetPluginInfo, GetPluginCapabilities, Probe."""

from __future__ import annotations

import re

from oxide_csi.csi_v1 import csi_pb2
from tests.sanity.driver import CheckFailed, Driver
from tests.sanity.resources import Resources

#: RFC 1035-style name as the spec words it: <= 63 characters, alphanumeric at both ends,
#: dashes, dots and alphanumerics between.
_PLUGIN_NAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,61}[A-Za-z0-9])?$")
_Service = csi_pb2.PluginCapability.Service
_Expansion = csi_pb2.PluginCapability.VolumeExpansion


def plugin_info_fields(d: Driver, r: Resources) -> None:
    """name is REQUIRED and DNS-like (<= 63 chars); vendor_version is REQUIRED."""
    info = d.ok("GetPluginInfo", csi_pb2.GetPluginInfoRequest())
    if not info.name:
        raise CheckFailed("GetPluginInfo returned an empty name")
    if len(info.name) > 63 or not _PLUGIN_NAME.match(info.name):
        raise CheckFailed(f"plugin name {info.name!r} is not a domain-style name of <= 63 chars")
    if not info.vendor_version:
        raise CheckFailed("GetPluginInfo returned an empty vendor_version")


def plugin_capabilities_known(d: Driver, r: Resources) -> None:
    """Every capability names a known service or expansion type, never UNKNOWN."""
    reply = d.ok("GetPluginCapabilities", csi_pb2.GetPluginCapabilitiesRequest())
    for cap in reply.capabilities:
        kind = cap.WhichOneof("type")
        if kind == "service":
            if cap.service.type not in _Service.Type.values() or cap.service.type == 0:
                raise CheckFailed(f"unknown plugin service capability {cap.service.type}")
        elif kind == "volume_expansion":
            value = cap.volume_expansion.type
            if value not in _Expansion.Type.values() or value == 0:
                raise CheckFailed(f"unknown volume expansion capability {value}")
        else:
            raise CheckFailed("a plugin capability names neither service nor volume_expansion")


def probe_answers(d: Driver, r: Resources) -> None:
    """Probe succeeds; a plugin that answers it is ready or says it is not (ready=false)."""
    reply = d.ok("Probe", csi_pb2.ProbeRequest())
    if reply.HasField("ready") and not reply.ready.value:
        raise CheckFailed("Probe still reports not ready after the suite waited for it")


CHECKS = (plugin_info_fields, plugin_capabilities_known, probe_answers)
