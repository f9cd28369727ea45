"""A small Kubernetes API client for the node plugin: JSON over HTTP/1.1 on asyncio and ``ssl``.

Why not lightkube here, when the controller uses it: the node plugin runs on every node, and
its memory is paid once per node (``bench/node_memory.py``). lightkube brings httpx, httpcore,
anyio, h2, PyYAML and msgspec, about 10 MB of resident memory, for what the node needs of
Kubernetes: a few calls on its own heartbeat Lease and one watch on its power-off requests. So
the node speaks to the API server with the standard library's TLS and h11 (the HTTP/1.1 state
machine httpx itself is built on) and plain JSON; the controller keeps lightkube.

Configuration as lightkube reads it, in the two forms a node plugin meets: the pod's service
account (token file re-read at every request, as the kubelet rotates it; the cluster CA) or a
kubeconfig (``--kubeconfig``: its current context's server, CA, token or token file, client
certificate files). A kubeconfig that is JSON is read without PyYAML; YAML loads it on demand.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import ssl
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import h11

from oxide_csi.config_common import ConfigError

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
#: Seconds one request may take (a watch: to connect and get its answer's head).
REQUEST_TIMEOUT = 10.0
_CHUNK = 65536


class KubeConfigError(ConfigError):
    """The configuration cannot be used (one line, no secret): the plugin does not start."""


class LeanApiError(Exception):
    """The API server answered with an error status; ``reason`` is its Status reason."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class ApiTarget:
    """Where the API server is and how to prove who we are to it."""

    host: str
    port: int
    #: False only for a plain-HTTP test server (an ``http://`` server in a kubeconfig).
    tls: bool = True
    ca_file: str | None = None
    ca_data: str | None = None
    insecure: bool = False
    token: str | None = None
    token_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None

    def bearer(self) -> str | None:
        if self.token_file is not None:
            return Path(self.token_file).read_text().strip()
        return self.token

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=self.ca_file, cadata=self.ca_data)
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.cert_file is not None:
            context.load_cert_chain(self.cert_file, self.key_file)
        return context


def api_target(kubeconfig: Path | None) -> ApiTarget:
    """The kubeconfig's target if one is given, else the pod's service account; a file that
    cannot be read is a start-up error like any other setting."""
    try:
        return from_kubeconfig(kubeconfig) if kubeconfig is not None else in_cluster()
    except (OSError, ValueError) as exc:
        if isinstance(exc, KubeConfigError):
            raise
        source = kubeconfig or "the pod's service account"
        what = f"cannot load the Kubernetes configuration ({source}): {exc}"
        raise KubeConfigError(what) from None


def in_cluster(env: Mapping[str, str] = os.environ, root: Path = SERVICE_ACCOUNT) -> ApiTarget:
    host, port = env.get("KUBERNETES_SERVICE_HOST"), env.get("KUBERNETES_SERVICE_PORT")
    if not host or not port or not (root / "token").is_file():
        raise KubeConfigError(
            "not in a pod: no KUBERNETES_SERVICE_HOST/PORT or no service account token"
        )
    return ApiTarget(
        host=host,
        port=int(port),
        ca_file=str(root / "ca.crt"),
        token_file=str(root / "token"),
    )


def from_kubeconfig(path: Path) -> ApiTarget:
    """The current context of a kubeconfig file; relative file names are relative to it."""
    text = path.read_text()
    try:
        raw = json.loads(text)
    except ValueError:
        import yaml  # only for a YAML kubeconfig (kubectl's own); JSON is YAML too

        try:
            raw = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            kind = type(exc).__name__
            raise KubeConfigError(f"kubeconfig {path} is neither JSON nor YAML ({kind})") from None
    try:
        name = raw["current-context"]
        context = _named(raw["contexts"], name)["context"]
        cluster = _named(raw["clusters"], context["cluster"])["cluster"]
        who = context.get("user")
        user = _named(raw.get("users") or [], who)["user"] if who else {}
        server = urlsplit(cluster["server"])
    except (KeyError, TypeError, IndexError) as exc:
        raise KubeConfigError(f"kubeconfig {path}: missing {exc}") from None
    if server.scheme not in ("https", "http") or not server.hostname:
        raise KubeConfigError(f"kubeconfig {path}: the server must be https://HOST[:PORT]")
    for unsupported in ("client-certificate-data", "exec", "auth-provider"):
        if unsupported in user:
            raise KubeConfigError(f"kubeconfig {path}: {unsupported} is not supported here")

    def local(key: str, where: Mapping[str, Any]) -> str | None:
        value = where.get(key)
        return str(path.parent / value) if value else None

    data = cluster.get("certificate-authority-data")
    return ApiTarget(
        host=server.hostname,
        port=server.port or (443 if server.scheme == "https" else 80),
        tls=server.scheme == "https",
        ca_file=local("certificate-authority", cluster),
        ca_data=base64.b64decode(data).decode() if data else None,
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        token=user.get("token"),
        token_file=local("tokenFile", user),
        cert_file=local("client-certificate", user),
        key_file=local("client-key", user),
    )


def _named(items: list[dict[str, Any]], name: str) -> dict[str, Any]:
    found = next((item for item in items if item.get("name") == name), None)
    if found is None:
        raise KeyError(name)
    return found


class LeanClient:
    """JSON calls and watches against one API server; one connection per call."""

    def __init__(self, target: ApiTarget, *, timeout: float = REQUEST_TIMEOUT) -> None:
        self._target = target
        self._timeout = timeout
        self._ssl = target.ssl_context() if target.tls else None

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        """The JSON answer of one request; :class:`LeanApiError` for an error status."""
        async with asyncio.timeout(self._timeout):
            exchange = await self._send(method, path, body)
            try:
                status = await exchange.head()
                payload = b"".join([chunk async for chunk in exchange.body()])
            finally:
                exchange.close()
        answer = json.loads(payload) if payload else None
        if status >= 400:
            raise _error(status, answer)
        return answer

    async def stream(self, path: str, *, idle: float | None = None) -> AsyncIterator[Any]:
        """The JSON objects of a watch, one a line, until the server ends it. ``idle``: a
        connection silent for longer is given up (TimeoutError), for a server that vanished
        without closing it; set it above the watch's ``timeoutSeconds``."""
        async with asyncio.timeout(self._timeout):
            exchange = await self._send("GET", path, None)
            status = await exchange.head()
        exchange.idle = idle
        try:
            if status >= 400:
                payload = b"".join([chunk async for chunk in exchange.body()])
                raise _error(status, json.loads(payload) if payload else None)
            pending = b""
            async for chunk in exchange.body():
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield json.loads(line)
        finally:
            exchange.close()

    async def _send(self, method: str, path: str, body: Any) -> _Exchange:
        target = self._target
        reader, writer = await asyncio.open_connection(
            target.host,
            target.port,
            ssl=self._ssl,
            server_hostname=target.host if self._ssl is not None else None,
        )
        content = json.dumps(body).encode() if body is not None else b""
        headers = [
            ("Host", f"{target.host}:{target.port}"),
            ("Accept", "application/json"),
            ("Connection", "close"),
            ("Content-Length", str(len(content))),
        ]
        if body is not None:
            headers.append(("Content-Type", "application/json"))
        bearer = target.bearer()
        if bearer:
            headers.append(("Authorization", f"Bearer {bearer}"))
        conn = h11.Connection(h11.CLIENT)
        out = conn.send(h11.Request(method=method, target=path, headers=headers)) or b""
        if content:
            out += conn.send(h11.Data(data=content)) or b""
        out += conn.send(h11.EndOfMessage()) or b""
        writer.write(out)
        await writer.drain()
        return _Exchange(conn, reader, writer)


class _Exchange:
    """One request's answer, read through h11."""

    def __init__(
        self, conn: h11.Connection, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self._conn = conn
        self._reader = reader
        self._writer = writer
        #: Seconds one read of the answer may wait (None: no bound of its own).
        self.idle: float | None = None

    async def _event(self) -> Any:
        while True:
            event = self._conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            read = self._reader.read(_CHUNK)
            self._conn.receive_data(await asyncio.wait_for(read, self.idle))

    async def head(self) -> int:
        event = await self._event()
        if not isinstance(event, h11.Response):
            raise ConnectionError(f"the API server answered no HTTP response ({event!r})")
        return int(event.status_code)

    async def body(self) -> AsyncIterator[bytes]:
        while True:
            event = await self._event()
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                return

    def close(self) -> None:
        self._writer.close()


def _error(status: int, answer: Any) -> LeanApiError:
    if isinstance(answer, dict):
        return LeanApiError(status, str(answer.get("reason", "")), str(answer.get("message", "")))
    return LeanApiError(status, "", "")
