"""Parsing of the CSI endpoint the plugin listens on.

Kubernetes always talks to a CSI plugin over a unix socket (``unix:///csi/csi.sock``); TCP is
accepted for debugging and for pointing test tools at a remote plugin. Parsing lives in its own
module so the CLI can reject a malformed endpoint before anything starts.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path


class EndpointError(ValueError):
    """The endpoint string is not ``unix:///absolute/path`` or ``tcp://host:port``."""


@dataclass(frozen=True)
class Endpoint:
    """Where the gRPC server listens; exactly one of ``path`` or ``host``/``port`` is set."""

    scheme: str
    path: Path | None = None
    host: str | None = None
    port: int | None = None

    @property
    def grpc_address(self) -> str:
        """The address in the form ``grpc.aio.Server.add_insecure_port`` and channels expect."""
        if self.scheme == "unix":
            return f"unix://{self.path}"
        host = self.host or ""
        if ":" in host:  # a bare IPv6 address needs brackets
            host = f"[{host}]"
        return f"{host}:{self.port}"

    def __str__(self) -> str:
        if self.scheme == "unix":
            return f"unix://{self.path}"
        return f"tcp://{self.grpc_address}"


def parse_endpoint(text: str) -> Endpoint:
    """Parse ``unix:///path``, ``unix:/path`` or ``tcp://host:port`` (host may be ``[::1]``)."""
    text = text.strip()
    if text.startswith("unix:"):
        raw = text[len("unix:") :]
        if raw.startswith("//"):
            raw = raw[2:]
        path = Path(raw)
        if not raw or not path.is_absolute():
            raise EndpointError(f"unix endpoint needs an absolute path: {text!r}")
        if ".." in path.parts:
            raise EndpointError(f"unix endpoint path must not contain '..': {text!r}")
        return Endpoint(scheme="unix", path=path)
    if text.startswith("tcp://"):
        rest = text[len("tcp://") :]
        host, sep, port_text = rest.rpartition(":")
        if not sep or not port_text.isdigit():
            raise EndpointError(f"tcp endpoint needs host:port: {text!r}")
        port = int(port_text)
        if not 0 <= port <= 65535:
            raise EndpointError(f"tcp port out of range: {text!r}")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
            try:
                ipaddress.IPv6Address(host)
            except ValueError as exc:
                raise EndpointError(f"bad IPv6 address in {text!r}") from exc
        if not host:
            raise EndpointError(f"tcp endpoint needs a host: {text!r}")
        return Endpoint(scheme="tcp", host=host, port=port)
    raise EndpointError(f"endpoint must start with unix:// or tcp://: {text!r}")
