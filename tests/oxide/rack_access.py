"""Test doubles for reaching a rack: a private CA with a server certificate, a TLS front for
the simulator, and a CONNECT proxy that counts the tunnels it opens.

Real sockets and real TLS (certificates made with the ``openssl`` command), so the client's
CA handling and proxy settings are tested the way a rack behind a proxy would meet them.
"""

from __future__ import annotations

import select
import socket
import socketserver
import ssl
import subprocess
import threading
from pathlib import Path


def make_ca(directory: Path) -> tuple[Path, Path, Path]:
    """A CA certificate and a server certificate (and key) for localhost/127.0.0.1."""

    def run(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
        "-days", "1", "-subj", "/CN=oxide-csi test CA")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out", "srv.csr",
        "-subj", "/CN=localhost")  # fmt: skip
    (directory / "ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("x509", "-req", "-in", "srv.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "srv.crt", "-days", "1", "-extfile", "ext")  # fmt: skip
    return directory / "ca.crt", directory / "srv.crt", directory / "srv.key"


def _pipe(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    sockets = [a, b]
    while True:
        ready, _, _ = select.select(sockets, [], [], 10)
        if not ready:
            return
        for sock in ready:
            data = sock.recv(65536)
            if not data:
                return
            (b if sock is a else a).sendall(data)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class TlsFront:
    """Terminates TLS with ``cert``/``key`` on 127.0.0.1 and forwards plain bytes to
    ``upstream`` (the simulator): the simulator reached over https."""

    def __init__(self, upstream: tuple[str, int], cert: Path, key: Path) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                try:
                    tls = context.wrap_socket(self.request, server_side=True)
                except (ssl.SSLError, OSError):
                    return  # the client refused our certificate
                with tls, socket.create_connection(upstream) as plain:
                    _pipe(tls, plain)

        self._server = _Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class ConnectProxy:
    """An HTTP proxy that only tunnels (CONNECT), as HTTPS_PROXY needs; ``tunnels`` lists the
    ``host:port`` of each tunnel opened."""

    def __init__(self) -> None:
        self.tunnels: list[str] = []
        tunnels = self.tunnels

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                line = self.rfile.readline().decode("latin-1").split()
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                if len(line) < 2 or line[0] != "CONNECT":
                    self.wfile.write(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n")
                    return
                host, _, port = line[1].rpartition(":")
                tunnels.append(line[1])
                with socket.create_connection((host.strip("[]"), int(port))) as upstream:
                    self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    self.wfile.flush()
                    _pipe(self.request, upstream)

        self._server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
