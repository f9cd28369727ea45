"""The simulator's command line as a real child process: URL first, --instances, signals,
--state-dir across restarts, and the token never echoed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.sim.helpers import TOKEN, P, wait_run_state

ENTRY_POINTS = {
    "module": [sys.executable, "-m", "oxide_sim"],
    "oxide-csi": [sys.executable, "-m", "oxide_csi", "simulator"],
}


class SimProcess:
    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env,
            text=True,
        )
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()

    def client(self, token: str = TOKEN) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"authorization": f"Bearer {token}"}, timeout=10.0
        )

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str, str]:
        self.proc.send_signal(sig)
        out, err = self.proc.communicate(timeout=30)
        return self.proc.returncode, out, err

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate(timeout=30)


@pytest.fixture
def spawn() -> Iterator[type[SimProcess]]:
    started: list[SimProcess] = []

    class Tracked(SimProcess):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            started.append(self)

    yield Tracked
    for proc in started:
        proc.kill()


def _args(*extra: str) -> list[str]:
    return ["--listen", "127.0.0.1:0", "--token", TOKEN, *extra]


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_prints_url_first_and_serves_instances_with_boot_disks(spawn, entry: str) -> None:
    sim = spawn([*ENTRY_POINTS[entry], *_args("--instances", "3")])
    assert sim.url.startswith("http://127.0.0.1:"), sim.url
    with sim.client() as c:
        r = c.get("/v1/instances", params=P)
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        assert len(items) == 3
        for inst in items:
            assert inst["run_state"] == "running"
            disks = c.get(f"/v1/instances/{inst['id']}/disks").json()["items"]
            assert [d["id"] for d in disks] == [inst["boot_disk_id"]]
            assert disks[0]["state"] == {"state": "attached", "instance": inst["id"]}
    code, out, err = sim.stop(signal.SIGTERM)
    assert code == 0, err
    assert TOKEN not in out + err


def test_sigint_exits_zero(spawn) -> None:
    sim = spawn([*ENTRY_POINTS["module"], *_args("--instances", "0")])
    with sim.client() as c:
        assert c.get("/v1/instances", params=P).json()["items"] == []
    code, _, err = sim.stop(signal.SIGINT)
    assert code == 0, err


def test_token_from_environment_and_never_echoed(spawn) -> None:
    env = {**os.environ, "OXIDE_SIM_TOKEN": TOKEN}
    sim = spawn([*ENTRY_POINTS["module"], "--listen", "127.0.0.1:0", "--project", "csi"], env)
    with sim.client() as c:
        assert c.get("/v1/projects/csi").status_code == 200
        assert c.get("/v1/me").status_code == 200
    with sim.client("wrong") as c:
        assert c.get("/v1/me").status_code == 401
    code, out, err = sim.stop()
    assert code == 0
    assert TOKEN not in out + err


def test_missing_token_is_a_usage_error() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OXIDE_SIM_TOKEN"}
    run = subprocess.run(
        [*ENTRY_POINTS["module"], "--listen", "127.0.0.1:0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert run.returncode == 2
    assert run.stdout == ""
    assert "OXIDE_SIM_TOKEN" in run.stderr


def test_flags_reach_the_simulator(spawn, tmp_path: Path) -> None:
    log = tmp_path / "traffic.jsonl"
    sim = spawn(
        [
            *ENTRY_POINTS["module"],
            *_args("--instances", "1", "--max-disks", "2", "--stop-seconds", "0.05"),
            *["--start-seconds", "0.05", "--traffic-log", str(log)],
            *["--disk-data-dir", str(tmp_path / "data")],
        ]
    )
    with sim.client() as c:
        r = c.post("/v1/instances/instance-0/stop", params=P)
        assert r.status_code == 202
        disk = {
            "name": "extra",
            "description": "",
            "size": 2**30,
            "disk_backend": {
                "type": "distributed",
                "disk_source": {"type": "blank", "block_size": 512},
            },
        }
        created = c.post("/v1/disks", params=P, json=disk).json()
        disk["name"] = "extra-2"
        second = c.post("/v1/disks", params=P, json=disk).json()
        wait_run_state(c, "instance-0", "stopped")
        attach = "/v1/instances/instance-0/disks/attach"
        assert c.post(attach, params=P, json={"disk": created["id"]}).status_code == 202
        # --max-disks 2: the boot disk and one more
        refused = c.post(attach, params=P, json={"disk": second["id"]})
        assert refused.status_code == 400
        assert "cannot attach more than 2 disks" in refused.json()["message"]
    assert sim.stop()[0] == 0
    assert (tmp_path / "data" / f"{created['id']}.img").stat().st_size == 2**30
    lines = log.read_text().splitlines()
    assert len(lines) >= 5
    assert TOKEN not in log.read_text()


def test_state_dir_survives_a_restart(spawn, tmp_path: Path) -> None:
    state = tmp_path / "state"
    first = spawn([*ENTRY_POINTS["module"], *_args("--state-dir", str(state))])
    with first.client() as c:
        disk = {
            "name": "keep-me",
            "description": "",
            "size": 2**30,
            "disk_backend": {
                "type": "distributed",
                "disk_source": {"type": "blank", "block_size": 4096},
            },
        }
        created = c.post("/v1/disks", params=P, json=disk).json()
        instances = c.get("/v1/instances", params=P).json()["items"]
    assert first.stop()[0] == 0

    second = spawn([*ENTRY_POINTS["module"], *_args("--state-dir", str(state))])
    with second.client() as c:
        assert c.get(f"/v1/disks/{created['id']}").json()["name"] == "keep-me"
        assert c.get("/v1/instances", params=P).json()["items"] == instances
    assert second.stop()[0] == 0


def test_port_in_use_exits_1(spawn) -> None:
    first = spawn([*ENTRY_POINTS["module"], *_args()])
    port = first.url.rsplit(":", 1)[1]
    run = subprocess.run(
        [*ENTRY_POINTS["module"], "--listen", f"127.0.0.1:{port}", "--token", TOKEN],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert run.returncode == 1
    assert run.stdout == ""
    assert "cannot serve on" in run.stderr
    assert first.stop()[0] == 0


@pytest.mark.parametrize("listen", ["nowhere", "127.0.0.1:x", "127.0.0.1:70000"])
def test_bad_listen_is_a_usage_error(listen: str) -> None:
    run = subprocess.run(
        [*ENTRY_POINTS["module"], "--listen", listen, "--token", TOKEN],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert run.returncode == 2
    assert "HOST:PORT" in run.stderr
