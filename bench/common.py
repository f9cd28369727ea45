"""What every benchmark shares: processes to measure (simulator, plugin), a table on stdout and
a JSON file in ``bench/results/``, and a description of the machine the figures came from.

Why real processes: the figures must be the plugin's, not a test double's. The simulator runs
as ``python -m oxide_sim`` and the plugin as ``python -m oxide_csi serve``, each in its own
process, talking HTTP and gRPC over loopback exactly as in a cluster; the benchmark process
only sends calls and reads clocks.
"""

from __future__ import annotations

import json
import math
import os
import platform
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import grpc
import httpx
from prometheus_client.parser import text_string_to_metric_families

RESULTS_DIR = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parent.parent


def machine() -> dict[str, Any]:
    """The hardware and software the figures were measured on."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kib = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def machine_line() -> str:
    m = machine()
    return (
        f"{m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB RAM, Linux {m['kernel']}, "
        f"Python {m['python']}"
    )


def write_results(name: str, settings: dict[str, Any], rows: list[dict[str, Any]]) -> Path:
    """``bench/results/<name>.json``: the settings, the rows and the machine."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    body = {
        "benchmark": name,
        "command": f".venv/bin/python -m bench.{name}",
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "settings": settings,
        "rows": rows,
    }
    path.write_text(json.dumps(body, indent=2) + "\n")
    return path


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A Markdown table (pasteable into the README as it is)."""
    cells = [[str(c) for c in headers], *[[_fmt(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    print(f"\n{title}\n")
    for n, row in enumerate(cells):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if n == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    print(flush=True)


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}".rstrip("0").rstrip(".") if value != int(value) else f"{value:.1f}"
    return str(value)


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty sample."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(p / 100 * len(ordered))))
    return ordered[rank - 1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A short directory under /tmp (unix socket paths are limited to 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("OXIDE_", "CSI_"))}


class Simulator:
    """``python -m oxide_sim`` on a free loopback port, with its own random token."""

    def __init__(self, workdir: Path, **options: object) -> None:
        self.token = "oxide-token-bench-" + secrets.token_hex(16)
        argv = [sys.executable, "-m", "oxide_sim", "--listen", "127.0.0.1:0"]
        for key, value in options.items():
            argv += [f"--{key.replace('_', '-')}", str(value)]
        self._log = (workdir / "simulator.log").open("wb")
        env = {**clean_env(), "OXIDE_SIM_TOKEN": self.token}
        self.proc = subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=self._log, stdin=subprocess.DEVNULL
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().decode().strip()
        if not self.url.startswith("http"):
            self.close()
            raise RuntimeError("the simulator did not start (see simulator.log)")
        self.http = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30
        )

    def stats(self) -> dict[str, Any]:
        body: dict[str, Any] = self.http.get("/sim/stats").json()
        return body

    def instance_ids(self) -> dict[str, str]:
        return {name: i["id"] for name, i in self.stats()["instances"].items()}

    def disks(self) -> list[dict[str, Any]]:
        return project_disks(self.http, "default")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)
        if hasattr(self, "http"):
            self.http.close()
        self._log.close()


def project_disks(http: httpx.Client, project: str) -> list[dict[str, Any]]:
    """Every disk of ``project``, following pages until an empty one."""
    found: list[dict[str, Any]] = []
    params: dict[str, str | int] = {"project": project, "limit": 100}
    while True:
        page = http.get("/v1/disks", params=params).json()
        found += page["items"]
        if not page["items"] or not page.get("next_page"):
            return found
        params = {"project": project, "page_token": page["next_page"], "limit": 100}


class Plugin:
    """``python -m oxide_csi ARGS`` with a metrics endpoint; ``channel`` once it serves."""

    def __init__(
        self, workdir: Path, args: Sequence[str], env: dict[str, str], name: str = "plugin"
    ) -> None:
        self.metrics_port = free_port()
        self.endpoint = f"unix://{workdir / (name + '.sock')}"
        argv = [sys.executable, "-m", "oxide_csi", *args, "--endpoint", self.endpoint]
        argv += ["--metrics-address", f"127.0.0.1:{self.metrics_port}", "--log-level", "warning"]
        self.log_path = workdir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            argv,
            env={**clean_env(), **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.channel = wait_for_channel(self.endpoint, self.proc, self.log_path)

    def scrape(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10).text
        samples = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                samples[(s.name, frozenset(s.labels.items()))] = s.value
        return samples

    def close(self) -> None:
        self.channel.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


def wait_for_channel(
    endpoint: str, proc: subprocess.Popen[bytes], log_path: Path, timeout: float = 60.0
) -> grpc.Channel:
    channel = grpc.insecure_channel(endpoint)
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}; see {log_path}")
        try:
            grpc.channel_ready_future(channel).result(timeout=0.5)
            return channel
        except grpc.FutureTimeoutError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"not serving after {timeout} s; see {log_path}") from None


def sample(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def controller_env(sim: Simulator) -> dict[str, str]:
    """The controller's settings against ``sim``. The benchmark runner is none of the simulated
    instances, so the self power-off guard gets a fresh id that names none of them."""
    return {
        "OXIDE_HOST": sim.url,
        "OXIDE_TOKEN": sim.token,
        "OXIDE_PROJECT": "default",
        "OXIDE_CSI_CONTROLLER_INSTANCE_ID": str(uuid.uuid4()),
    }
