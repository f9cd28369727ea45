"""Oxide credentials from flags, environment, or the Oxide CLI's profile files.

The lookup order follows the official Oxide SDKs, so an operator who already uses the ``oxide``
CLI needs nothing new: explicit flags win, then ``OXIDE_HOST``/``OXIDE_TOKEN`` (or
``OXIDE_TOKEN_FILE``: a file holding the token, which the client reads again when it changes,
so that a rotated Kubernetes Secret needs no restart), then the profile
named by ``OXIDE_PROFILE`` (or ``default-profile`` in ``config.toml``) from ``credentials.toml``
in the Oxide config directory (``$OXIDE_CONFIG_DIR``, else ``~/.config/oxide``), whose tables
look like ``[profile.NAME]`` with ``host``, ``token`` and ``user`` keys.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from oxide_csi.secrets import Secret, read_token_file


class CredentialsError(ValueError):
    """Credentials are missing or malformed; the message names what, never the token."""


@dataclass(frozen=True)
class OxideCredentials:
    """Where the Oxide API is and how to authenticate; the token hides itself in ``repr``."""

    host: str
    token: Secret = field(repr=False)
    source: str = "flags"
    #: Where the token was read from, when it came from ``OXIDE_TOKEN_FILE``: the client reads
    #: it again whenever it changes (a rotated Kubernetes Secret).
    token_file: Path | None = None


def config_dir(env: Mapping[str, str]) -> Path:
    if env.get("OXIDE_CONFIG_DIR"):
        return Path(env["OXIDE_CONFIG_DIR"])
    home = env.get("HOME") or str(Path.home())
    return Path(home) / ".config" / "oxide"


def _read_toml(path: Path) -> dict[str, object]:
    import tomllib  # here, not at the top: only the controller reads profiles, every node loads us

    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CredentialsError(f"cannot read {path}: {type(exc).__name__}") from None


def _profile(env: Mapping[str, str], name: str | None) -> OxideCredentials | None:
    directory = config_dir(env)
    if name is None:
        default = _read_toml(directory / "config.toml").get("default-profile")
        if not isinstance(default, str):
            return None
        name = default
    creds_path = directory / "credentials.toml"
    profiles = _read_toml(creds_path).get("profile")
    if not isinstance(profiles, dict) or name not in profiles:
        raise CredentialsError(f"Oxide profile {name!r} not found in {creds_path}")
    entry = profiles[name]
    host = entry.get("host") if isinstance(entry, dict) else None
    token = entry.get("token") if isinstance(entry, dict) else None
    if not isinstance(host, str) or not isinstance(token, str) or not host or not token:
        raise CredentialsError(f"Oxide profile {name!r} in {creds_path} needs host and token")
    return OxideCredentials(host=host, token=Secret(token), source=f"profile {name}")


def resolve_credentials(
    env: Mapping[str, str] | None = None,
    host: str | None = None,
    token: str | None = None,
    profile: str | None = None,
) -> OxideCredentials:
    """Resolve host and token by the SDK order; raise :class:`CredentialsError` naming the gap."""
    env = os.environ if env is None else env
    host = host or env.get("OXIDE_HOST") or None
    token = token or env.get("OXIDE_TOKEN") or None
    profile = profile or env.get("OXIDE_PROFILE") or None
    token_file = None
    if token is None and env.get("OXIDE_TOKEN_FILE"):
        token_file = Path(env["OXIDE_TOKEN_FILE"])
        token = _read_token(token_file)
    if host and token:
        source = "token file" if token_file else "environment"
        return _checked(
            OxideCredentials(host=host, token=Secret(token), source=source, token_file=token_file)
        )
    if profile is not None or (host is None and token is None):
        found = _profile(env, profile)
        if found is not None:
            return _checked(found)
    if host and not token:
        raise CredentialsError("OXIDE_TOKEN is not set (OXIDE_HOST is)")
    if token and not host:
        raise CredentialsError("OXIDE_HOST is not set (OXIDE_TOKEN is)")
    raise CredentialsError(
        "no Oxide credentials: set OXIDE_HOST and OXIDE_TOKEN, or OXIDE_PROFILE with a profile "
        f"in {config_dir(env) / 'credentials.toml'}"
    )


def _read_token(path: Path) -> str:
    try:
        return read_token_file(path)
    except ValueError as exc:
        raise CredentialsError(f"OXIDE_TOKEN_FILE: {exc}") from None


def _checked(creds: OxideCredentials) -> OxideCredentials:
    if not creds.host.startswith(("http://", "https://")):
        raise CredentialsError(f"Oxide host must be an http(s) URL, got {creds.host!r}")
    return creds
