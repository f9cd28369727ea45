"""The default driver under test: ``oxide-csi dev`` in a temporary directory.

This is the only part of the suite that knows which driver it tests, and it knows it only as a
command line: start it, wait until its socket answers, stop it with SIGTERM at the end. After
it stopped, nothing it made may remain on the machine: mounts and loop devices left under the
temporary directory are reported (and removed, so one bad run does not poison the next).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc

STOP_TIMEOUT = 30.0
PASSED_THROUGH = frozenset({"OXIDE_SIM_TRAFFIC_LOG"})


class DevServer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.endpoint = f"unix://{root / 'csi.sock'}"
        # inside the state directory: dev mode refuses one outside it without --hotplug
        self.kubelet_dir = root / "state" / "kubelet"
        self.log_path = root / "dev.log"
        self._proc: subprocess.Popen[bytes] | None = None

    def args(self) -> list[str]:
        return [
            "dev",
            "--endpoint",
            self.endpoint,
            "--state-dir",
            str(self.root / "state"),
            "--kubelet-dir",
            str(self.kubelet_dir),
            # the simulated rack stops and starts instances quickly, so attaching is quick
            "--stop-seconds",
            "0.05",
            "--start-seconds",
            "0.05",
            "--log-format",
            "json",
        ]

    def start(self, timeout: float = 60.0) -> grpc.Channel:
        self.kubelet_dir.mkdir(parents=True, exist_ok=True)
        # no Oxide or CSI settings of the caller leak in -- except CI's traffic recording, so
        # the simulated Oxide traffic of this suite is checked against the OpenAPI document too
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("OXIDE_", "CSI_")) or k in PASSED_THROUGH
        }
        env["HOME"] = str(self.root / "home")
        with self.log_path.open("wb") as log:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "oxide_csi", *self.args()],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        channel = grpc.insecure_channel(self.endpoint)
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(
                    f"oxide-csi dev exited with {self._proc.returncode}:\n{self.log()}"
                )
            try:
                grpc.channel_ready_future(channel).result(timeout=0.5)
                return channel
            except grpc.FutureTimeoutError:
                if time.monotonic() > deadline:
                    self.kill()
                    raise TimeoutError(f"oxide-csi dev did not serve:\n{self.log()}") from None

    def stop(self) -> int:
        """SIGTERM and wait; returns the exit code (killed after STOP_TIMEOUT: -9)."""
        proc = self._proc
        if proc is None:
            return 0
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        return proc.returncode

    def kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(10)

    def log(self, tail: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def leftovers(self) -> list[str]:
        """Mounts and loop devices still under the temporary directory; removes them."""
        found: list[str] = []
        for mount in sorted(mounts_under(self.root), key=len, reverse=True):
            found.append(f"mount {mount}")
            subprocess.run(["umount", "-l", mount], check=False, capture_output=True)
        for device, backing in loops_under(self.root):
            found.append(f"loop device {device} on {backing}")
            subprocess.run(["losetup", "-d", device], check=False, capture_output=True)
        return found


def mounts_under(root: Path) -> list[str]:
    prefix = str(root) + "/"
    result = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            point = _unescape(line.split()[4])
            if point.startswith(prefix):
                result.append(point)
    return result


def loops_under(root: Path) -> list[tuple[str, str]]:
    try:
        out = subprocess.run(
            ["losetup", "--list", "--json", "-O", "NAME,BACK-FILE"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    if not out.strip():
        return []
    prefix = str(root) + "/"
    devices = json.loads(out).get("loopdevices", [])
    return [
        (d["name"], d["back-file"])
        for d in devices
        if str(d.get("back-file") or "").split(" (deleted)")[0].startswith(prefix)
    ]


def _unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as octal (\\040...)."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def make_root() -> Path:
    """A short directory under /tmp (unix socket paths are limited to 107 bytes)."""
    return Path(tempfile.mkdtemp(prefix="ocsi-sanity-", dir="/tmp"))
