"""The suite's settings: sizes, JSON maps, and secrets that never appear in an error."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.sanity.settings import SanityConfig, SettingsError, parse_size


def test_defaults_start_the_dev_driver() -> None:
    config = SanityConfig.from_env({})
    assert config.endpoint is None
    assert config.volume_size == 1 << 30
    assert config.parameters == {} and config.secrets == {}


def test_everything_can_be_set() -> None:
    config = SanityConfig.from_env(
        {
            "OXIDE_CSI_SANITY_ENDPOINT": "unix:///run/csi.sock",
            "OXIDE_CSI_SANITY_STAGING_DIR": "/var/lib/kubelet/plugins/x",
            "OXIDE_CSI_SANITY_TARGET_DIR": "/var/lib/kubelet/pods",
            "OXIDE_CSI_SANITY_VOLUME_SIZE": "2Gi",
            "OXIDE_CSI_SANITY_PARAMETERS": '{"fsType": "xfs"}',
            "OXIDE_CSI_SANITY_SECRETS": '{"token": "s3cret"}',
        }
    )
    assert config.endpoint == "unix:///run/csi.sock"
    assert config.staging_dir == Path("/var/lib/kubelet/plugins/x")
    assert config.target_dir == Path("/var/lib/kubelet/pods")
    assert config.volume_size == 2 << 30
    assert config.parameters == {"fsType": "xfs"}
    assert config.secrets == {"token": "s3cret"}
    assert "s3cret" not in repr(config)


@pytest.mark.parametrize(("text", "size"), [("1", 1), ("512Mi", 512 << 20), ("3Ti", 3 << 40)])
def test_sizes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["0", "-1Gi", "1GB", "lots"])
def test_bad_sizes(text: str) -> None:
    with pytest.raises(SettingsError, match="VOLUME_SIZE"):
        parse_size(text)


def test_relative_dirs_are_refused() -> None:
    with pytest.raises(SettingsError, match="STAGING_DIR"):
        SanityConfig.from_env({"OXIDE_CSI_SANITY_STAGING_DIR": "relative/dir"})


def test_malformed_secrets_do_not_leak() -> None:
    with pytest.raises(SettingsError) as caught:
        SanityConfig.from_env({"OXIDE_CSI_SANITY_SECRETS": '{"token": "s3cret"'})
    assert "s3cret" not in str(caught.value)
    with pytest.raises(SettingsError, match="strings to strings"):
        SanityConfig.from_env({"OXIDE_CSI_SANITY_SECRETS": '{"n": 1}'})
