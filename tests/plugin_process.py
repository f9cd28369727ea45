"""Run ``oxide-csi`` as a real child process and talk to it over its unix socket."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import grpc


class PluginProcess:
    """``python -m oxide_csi ARGS`` with its stderr captured to a file for later assertions."""

    def __init__(self, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.args = args
        self.log_path = log_dir / f"plugin-{os.getpid()}-{time.monotonic_ns()}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "oxide_csi", *args],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )

    def wait_ready(self, endpoint: str, timeout: float = 20.0) -> grpc.Channel:
        """Wait until the server accepts connections; return a channel to it."""
        channel = grpc.insecure_channel(endpoint)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"plugin exited with {self.proc.returncode}: {self.output()}")
            try:
                grpc.channel_ready_future(channel).result(timeout=0.5)
                return channel
            except grpc.FutureTimeoutError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"plugin not ready: {self.output()}") from None

    def terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = 30.0) -> int:
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM, then SIGKILL after ``grace``: a test's leftover process gets its orderly
        exit first (dev mode releases its loop devices and their mounts on it, never on a
        SIGKILL)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(grace)
        self.kill()

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")


def release_dev_devices(base: Path) -> None:
    """Release the loop devices (and their mounts) of every dev-mode state directory under
    ``base``: what a dev process that had to be SIGKILLed left behind, which its next start
    would reap -- but a test's state directory has no next start."""
    from tests.dev.helpers import release_dev_state

    for devices in base.rglob("devices"):
        if devices.is_dir() and not devices.is_symlink():
            release_dev_state(devices.parent)


def wait_until(predicate: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Poll a condition a process under test reaches on its own; fail (not time) on a hang."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
