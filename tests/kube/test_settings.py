"""The Kubernetes backend's settings and its cost: flags and environment resolve to one
configuration, a missing namespace or API configuration is one line and exit 2, and neither a
node plugin nor a file-backed controller ever loads the Kubernetes client."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from oxide_csi.config import ServeConfig, build_serve_config
from oxide_csi.config_common import ConfigError

CONTROLLER_ENV = {
    "OXIDE_HOST": "https://rack.example",
    "OXIDE_TOKEN": "oxide-token-settingstest012345",
    "OXIDE_PROJECT": "default",
    "OXIDE_CSI_CONTROLLER_INSTANCE_ID": "6c1f2e9a-3b7d-4c58-9e0a-1d2f3a4b5c6d",
}


def _controller(args: dict[str, object], env: dict[str, str]) -> ServeConfig:
    config = build_serve_config({"mode": "controller", **args}, {**CONTROLLER_ENV, **env})
    assert config.controller is not None
    return config


def test_file_backend_is_the_default() -> None:
    config = _controller({}, {})
    assert config.controller is not None and config.controller.kube is None


def test_kubernetes_backend_from_flags_and_environment(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    config = _controller(
        {"state_backend": "kubernetes", "kubeconfig": str(kubeconfig), "lease_duration": "12"},
        {"POD_NAMESPACE": "storage", "POD_NAME": "ctl-7", "OXIDE_CSI_OXIDE_REQUEST_TIMEOUT": "5"},
    )
    assert config.controller is not None
    kube = config.controller.kube
    assert kube is not None
    assert (kube.namespace, kube.kubeconfig, kube.lease_seconds) == ("storage", kubeconfig, 12)
    assert kube.identity.startswith("ctl-7_")
    assert config.oxide is not None
    assert kube.oxide_call_seconds == 5 == config.oxide.request_timeout
    assert kube.renew_deadline < kube.lease_seconds
    again = _controller({"state_backend": "kubernetes", "kubeconfig": "x"}, {"POD_NAMESPACE": "s"})
    assert again.controller is not None and again.controller.kube is not None
    assert again.controller.kube.identity != kube.identity  # one identity per process
    flag_wins = _controller(
        {"state_backend": "kubernetes", "namespace": "flag"},
        {"POD_NAMESPACE": "env", "KUBECONFIG": "kc", "OXIDE_CSI_STATE_BACKEND": "file"},
    )
    assert flag_wins.controller is not None and flag_wins.controller.kube is not None
    assert flag_wins.controller.kube.namespace == "flag"


@pytest.mark.parametrize(
    ("args", "env", "expect"),
    [
        ({"state_backend": "etcd"}, {}, "kubernetes or file"),
        ({"state_backend": "kubernetes", "kubeconfig": "kc"}, {}, "POD_NAMESPACE"),
        ({"state_backend": "kubernetes"}, {"POD_NAMESPACE": "s"}, "KUBECONFIG"),
        (
            {"state_backend": "kubernetes", "kubeconfig": "kc", "lease_duration": "2"},
            {"POD_NAMESPACE": "s"},
            "3..3600",
        ),
        ({"oxide_request_timeout": "0"}, {}, "positive"),
    ],
)
def test_bad_settings_are_config_errors(
    args: dict[str, object], env: dict[str, str], expect: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(ConfigError, match=expect):
        _controller(args, env)


def test_neither_node_nor_file_controller_loads_the_kubernetes_client() -> None:
    script = textwrap.dedent(
        """
        import sys
        from oxide_csi.app import controller_parts, node_servicer
        from oxide_csi.config import build_serve_config
        from oxide_csi.oxide import OxideClient, OxideConfig

        env = {"OXIDE_HOST": "https://r.example", "OXIDE_TOKEN": "t" * 20,
               "OXIDE_PROJECT": "p",
               "OXIDE_CSI_CONTROLLER_INSTANCE_ID": "6c1f2e9a-3b7d-4c58-9e0a-1d2f3a4b5c6d"}
        def kube_modules():
            return sorted(m for m in sys.modules
                          if m.startswith(("lightkube", "httpx2", "oxide_csi.kube")))

        node = build_serve_config({"mode": "node", "node_id": "n"}, env)
        node_servicer(node.node)
        print(kube_modules())
        ctl = build_serve_config({"mode": "controller"}, env)
        controller_parts(OxideClient(OxideConfig("https://r.example", "t", "p")),
                         ctl.controller)
        print(kube_modules())
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    # (log lines of the wiring aside)
    node, controller = [line for line in result.stdout.splitlines() if line.startswith("[")]
    assert node == "[]", result.stderr
    # the settings' plain dataclasses, nothing of the client
    assert controller == "['oxide_csi.kube', 'oxide_csi.kube.settings']", result.stderr


def test_unloadable_kubeconfig_is_one_line_exit_2(plugin_env, tmp_path: Path) -> None:
    env = {**plugin_env, **CONTROLLER_ENV, "POD_NAMESPACE": "storage"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "oxide_csi",
            "serve",
            "--mode",
            "controller",
            "--endpoint",
            f"unix://{tmp_path / 'csi.sock'}",
            "--state-dir",
            str(tmp_path / "state"),
            "--state-backend",
            "kubernetes",
            "--kubeconfig",
            str(tmp_path / "missing-kubeconfig"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot load the Kubernetes configuration" in lines[0], lines
