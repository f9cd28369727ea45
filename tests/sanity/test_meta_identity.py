"""The suite is honest about the Identity service: each broken fake fails its check."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from oxide_csi.csi_v1 import csi_pb2
from tests.sanity.checks import Check, identity
from tests.sanity.fakes.controller import FakeIdentity
from tests.sanity.fakes.harness import FakeDriver, broken_cases


class SpacedName(FakeIdentity):
    name = "Fake Driver!"


class LongName(FakeIdentity):
    name = "a" * 64


class DashEndedName(FakeIdentity):
    name = "fake.example-"


class NoVersion(FakeIdentity):
    vendor_version = ""


class UnknownCapability(FakeIdentity):
    def GetPluginCapabilities(self, request: Any, context: Any) -> Any:
        reply = super().GetPluginCapabilities(request, context)
        reply.capabilities.add(
            service=csi_pb2.PluginCapability.Service(type=csi_pb2.PluginCapability.Service.UNKNOWN)
        )
        return reply


class NeverReady(FakeIdentity):
    def Probe(self, request: Any, context: Any) -> Any:
        reply = csi_pb2.ProbeResponse()
        reply.ready.value = False
        return reply


BROKEN: list[tuple[Check, type[FakeIdentity], str]] = [
    (identity.plugin_info_fields, SpacedName, "domain-style"),
    (identity.plugin_info_fields, LongName, "domain-style"),
    (identity.plugin_info_fields, DashEndedName, "domain-style"),
    (identity.plugin_info_fields, NoVersion, "vendor_version"),
    (identity.plugin_capabilities_known, UnknownCapability, "unknown plugin service"),
    (identity.probe_answers, NeverReady, "not ready"),
]


@broken_cases(BROKEN)
def test_check_catches_broken_identity(
    check: Check,
    broken: type[FakeIdentity],
    match: str,
    fake_driver: Callable[..., FakeDriver],
) -> None:
    fake_driver(identity=broken).run_expecting_failure(check, match)
