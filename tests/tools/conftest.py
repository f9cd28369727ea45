"""A real ``oxide-csi dev`` in a temporary directory, shared by the tools' tests (each leaves
nothing behind, and checks that it did not), and the CLI tools run as real child processes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from oxide_csi.tools import oxide_env
from tests.dev.devproc import dev_args
from tests.dev.helpers import release_dev_state
from tests.plugin_process import PluginProcess
from tests.sanity.devserver import PASSED_THROUGH


def clean_env() -> dict[str, str]:
    """The caller's environment without Oxide or CSI settings (none may leak into a test)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OXIDE_", "CSI_"))}
    env.pop("KUBELET_DIR", None)
    return env


def run_cli(
    *args: str, env: dict[str, str] | None = None, stdin: str = "", timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "oxide_csi", *args],
        env=clean_env() if env is None else env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def endpoint_in(root: Path) -> str:
    return f"unix://{root / 'csi.sock'}"


@dataclass
class Dev:
    """A running ``oxide-csi dev``: where it is, and a look at its simulated rack."""

    root: Path
    process: PluginProcess

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def endpoint(self) -> str:
        return endpoint_in(self.root)

    @property
    def kubelet(self) -> Path:
        return self.state / "kubelet"

    def env(self) -> dict[str, str]:
        return oxide_env.read(self.state / oxide_env.FILE_NAME)

    def oxide(self, path: str, *, by_id: bool = False) -> Any:
        """GET ``path`` from the simulated Oxide (``by_id``: an object named by its UUID,
        which Oxide refuses to see qualified by a project)."""
        values = self.env()
        response = httpx.get(
            values["OXIDE_HOST"] + path,
            params={} if by_id else {"project": values["OXIDE_PROJECT"]},
            headers={"Authorization": f"Bearer {values['OXIDE_TOKEN']}"},
            timeout=10,
        )
        response.raise_for_status()
        return response.json()

    def disk_names(self) -> list[str]:
        return sorted(d["name"] for d in self.oxide("/v1/disks")["items"])

    def sim_stats(self) -> Any:
        return httpx.get(self.env()["OXIDE_HOST"] + "/sim/stats", timeout=10).json()

    def requests(self, key: str) -> int:
        """How many requests ``METHOD /template`` the simulated Oxide has received."""
        counts: dict[str, int] = self.sim_stats()["requests"]
        return counts.get(key, 0)

    def sim(self, method: str, path: str, body: object) -> None:
        """A /sim test hook (fault injection); these need no token."""
        url = self.env()["OXIDE_HOST"] + path
        httpx.request(method, url, json=body, timeout=10).raise_for_status()


@pytest.fixture(scope="package")
def dev() -> Iterator[Dev]:
    if os.geteuid() != 0:
        pytest.skip("needs root (loop devices, mount)")
    root = Path(tempfile.mkdtemp(prefix="ocsi-tools-", dir="/tmp"))
    env = clean_env()
    env["HOME"] = str(root / "home")
    # CI records the simulated Oxide's traffic to check it against the OpenAPI document: the
    # demo's own look at Oxide (instances, disks, snapshots) is checked with the rest
    for passed in PASSED_THROUGH & os.environ.keys():
        env[passed] = os.environ[passed]
    # The demo's last check wants its disks gone from Oxide and the cycles of its detaches
    # counted: the immediate policy's story. Under dev's default (deferred) they wait for the
    # instance's next cycle, which tests/dev/test_dev_deferred.py proves.
    args = dev_args(endpoint_in(root), root / "state", "--detach-policy", "immediate")
    running = Dev(root, PluginProcess(args, env, root))
    try:
        running.process.wait_ready(running.endpoint).close()
        yield running
    finally:
        running.process.terminate()
        try:
            running.process.wait()
        finally:
            running.process.kill()
            release_dev_state(running.state)
            shutil.rmtree(root, ignore_errors=True)
