"""Reaching the rack: a private CA (``ca_file``), HTTPS_PROXY/NO_PROXY, and a token file that
is read again when it changes (a rotated Kubernetes Secret needs no restart)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from oxide_csi.oxide import OxideClient, api_errors
from tests.oxide.rack_access import ConnectProxy, TlsFront, make_ca
from tests.oxide.simkit import TOKEN, Sim, client_config

PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
              "all_proxy", "NO_PROXY", "no_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR")  # fmt: skip


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def tls_rack(sim: Sim, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The simulator behind TLS with a private CA: (https URL, CA file)."""
    ca, cert, key = make_ca(tmp_path)
    parts = urlsplit(sim.url)
    front = TlsFront((parts.hostname or "127.0.0.1", parts.port or 80), cert, key)
    yield f"https://localhost:{front.port}", ca
    front.close()


async def test_private_ca_file_is_trusted(tls_rack: tuple[str, Path], clean_env: object) -> None:
    url, ca = tls_rack
    async with OxideClient(client_config(url, ca_file=str(ca))) as client:
        assert (await client.get_project()).id
    async with OxideClient(client_config(url, max_attempts=1)) as untrusted:
        with pytest.raises(api_errors.OxideUnavailable, match="CERTIFICATE_VERIFY_FAILED"):
            await untrusted.get_project()


async def test_https_proxy_and_no_proxy(
    tls_rack: tuple[str, Path], clean_env: pytest.MonkeyPatch
) -> None:
    url, ca = tls_rack
    proxy = ConnectProxy()
    try:
        clean_env.setenv("HTTPS_PROXY", proxy.url)
        async with OxideClient(client_config(url, ca_file=str(ca))) as client:
            await client.get_project()
        assert proxy.tunnels == [urlsplit(url).netloc]
        clean_env.setenv("NO_PROXY", "localhost")
        async with OxideClient(client_config(url, ca_file=str(ca))) as client:
            await client.get_project()
        assert len(proxy.tunnels) == 1  # NO_PROXY: straight to the rack
    finally:
        proxy.close()


def _replace(path: Path, content: str) -> None:
    """Swap the file atomically, as kubelet updates a mounted Secret."""
    fresh = path.with_name(path.name + ".new")
    fresh.write_text(content)
    os.replace(fresh, path)


async def test_token_file_is_read_again_when_it_changes(sim: Sim, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    seen: list[str] = []
    cfg = client_config(sim.url, token_file=str(token_file), max_attempts=1)
    async with OxideClient(cfg, on_token=seen.append) as client:
        await client.get_project()
        _replace(token_file, "oxide-token-rotated-but-not-yet-known\n")
        with pytest.raises(api_errors.OxideUnauthorized):
            await client.get_project()  # the new token went out
        assert seen == ["oxide-token-rotated-but-not-yet-known"]
        _replace(token_file, "")  # a broken file: the last good token stays in use
        with pytest.raises(api_errors.OxideUnauthorized):
            await client.get_project()
        _replace(token_file, TOKEN)
        assert (await client.get_project()).id
        assert seen[-1] == TOKEN
