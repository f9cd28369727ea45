"""Connection settings of the Oxide client.

One frozen value built once at start-up (from flags, environment or a mounted secret by the
caller) and shared by every request. The token is excluded from ``repr``/``str`` so that logging
the configuration, or a test failure that prints it, never discloses the credential.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

from oxide_csi.config_common import (
    API_VERSION_PATTERN,
    DEFAULT_API_VERSION,
    USER_AGENT,
    ConfigError,
)
from oxide_csi.oxide.polling import Polling


@dataclass(frozen=True)
class OxideConfig:
    """Where the rack is, who we are, and how patient to be.

    Timeouts are per attempt; the total time of a call is bounded by the caller's ``deadline``
    and by ``max_attempts``. ``backoff_base``/``backoff_max`` shape the retry delays,
    ``poll_initial``/``poll_ratio``/``poll_max`` the waiters' polling (see ``Polling``),
    ``wait_timeout`` is the waiters' limit when a caller gives no deadline. ``ca_file`` adds a
    CA bundle for racks with a private CA; ``insecure`` turns TLS verification off
    (development only). ``token_file`` makes a rotated token take effect without a restart.
    """

    host: str
    token: str = field(repr=False)
    project: str
    api_version: str = DEFAULT_API_VERSION
    connect_timeout: float = 5.0
    request_timeout: float = 30.0
    max_attempts: int = 5
    backoff_base: float = 0.2
    backoff_max: float = 5.0
    user_agent: str = USER_AGENT
    page_size: int = 100
    poll_initial: float = 0.1
    poll_ratio: float = 0.05
    poll_max: float = 2.0
    wait_timeout: float = 300.0
    ca_file: str | None = None
    insecure: bool = False
    #: A file holding the token, read again whenever it changes (``token`` is its content at
    #: start); None: ``token`` for the life of the client.
    token_file: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.host)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"host must be an http(s) URL, got {self.host!r}")
        if not self.token or any(c in self.token for c in "\r\n"):
            raise ConfigError("token must be a non-empty single line")
        if not self.project:
            raise ConfigError("project must not be empty")
        if not API_VERSION_PATTERN.match(self.api_version):
            raise ConfigError(
                f"api_version must look like 2026021301.0.0, got {self.api_version!r}"
            )
        for name in ("connect_timeout", "request_timeout", "backoff_max", "poll_initial"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive")
        if self.backoff_base < 0:
            raise ConfigError("backoff_base must not be negative")
        if self.poll_max < self.poll_initial:
            raise ConfigError("poll_max must be at least poll_initial")
        if not 0 < self.poll_ratio <= 1:
            raise ConfigError("poll_ratio must be in (0, 1]")
        if self.wait_timeout <= 0:
            raise ConfigError("wait_timeout must be positive")
        if self.max_attempts < 1:
            raise ConfigError("max_attempts must be at least 1")
        if not 1 <= self.page_size <= 1000:
            raise ConfigError("page_size must be between 1 and 1000")

    @property
    def polling(self) -> Polling:
        """The waiters' schedule built from the ``poll_*`` fields."""
        return Polling(initial=self.poll_initial, ratio=self.poll_ratio, maximum=self.poll_max)

    @property
    def base_url(self) -> str:
        """The host without a trailing slash, so paths join as ``base_url + "/v1/..."``."""
        return self.host.rstrip("/")
