"""``OxideConfig``: the defaults the plugin relies on and the mistakes it refuses early."""

from __future__ import annotations

from typing import Any

import pytest

from oxide_csi import __version__
from oxide_csi.oxide import DEFAULT_API_VERSION, ConfigError, OxideConfig
from tests.oxide.simkit import TOKEN


def _cfg(**overrides: Any) -> OxideConfig:
    settings: dict[str, Any] = {"host": "https://rack.example", "token": TOKEN, "project": "p"}
    settings.update(overrides)
    return OxideConfig(**settings)


def test_defaults() -> None:
    cfg = _cfg()
    # Accepted by every rack from release 18 on; newer pins break older racks.
    assert cfg.api_version == DEFAULT_API_VERSION == "2026021301.0.0"
    assert cfg.user_agent == f"oxide-csi/{__version__}"
    assert cfg.request_timeout > 0 and cfg.connect_timeout > 0
    assert cfg.max_attempts >= 1


def test_base_url_has_no_trailing_slash() -> None:
    assert _cfg(host="https://rack.example/").base_url == "https://rack.example"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"host": "rack.example"}, "host"),
        ({"host": "ftp://rack.example"}, "host"),
        ({"token": ""}, "token"),
        ({"token": "two\nlines"}, "token"),
        ({"project": ""}, "project"),
        ({"api_version": "v1"}, "api_version"),
        ({"api_version": "2026021301"}, "api_version"),
        ({"connect_timeout": 0}, "connect_timeout"),
        ({"request_timeout": -1.0}, "request_timeout"),
        ({"backoff_base": -0.1}, "backoff_base"),
        ({"poll_initial": 1.0, "poll_max": 0.5}, "poll_max"),
        ({"poll_ratio": 0}, "poll_ratio"),
        ({"poll_ratio": 1.5}, "poll_ratio"),
        ({"wait_timeout": 0}, "wait_timeout"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"page_size": 0}, "page_size"),
        ({"page_size": 1001}, "page_size"),
    ],
)
def test_bad_settings_are_refused_by_name(overrides: dict[str, Any], field: str) -> None:
    with pytest.raises(ConfigError, match=field) as caught:
        _cfg(**overrides)
    assert TOKEN not in str(caught.value)


def test_token_error_does_not_echo_the_token() -> None:
    bad = "s3cret-value\r\n"
    with pytest.raises(ConfigError) as caught:
        _cfg(token=bad)
    assert "s3cret" not in str(caught.value)
