"""``oxide-csi demo`` against a real ``oxide-csi dev``: every step passes and nothing is left;
after a step fails in the middle, and after Ctrl-C or SIGTERM, the clean-up still leaves no
volume, snapshot, mount, directory or loop device behind."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.dev.helpers import loops_in, mount_points_under
from tests.tools.conftest import Dev, clean_env, run_cli

STEPS = [
    "connect", "create", "attach", "stage", "publish", "write", "snapshot", "restore",
    "verify", "unpublish", "unstage", "detach", "delete", "check",
]  # fmt: skip


@pytest.fixture
def before(dev: Dev) -> Iterator[list[str]]:
    """The rack's disks before the test; afterwards, proof that the demo left nothing."""
    disks = dev.disk_names()
    yield disks
    assert dev.disk_names() == disks
    assert dev.oxide("/v1/snapshots")["items"] == []
    assert mount_points_under(dev.kubelet) == []
    assert list(dev.kubelet.iterdir()) == []  # the directories it made are gone too
    assert sorted(loops_in(dev.state / "devices")) == ["instance-0-boot"]


_ROW = re.compile(r"^(?P<step>\S.*?)\s{2,}(?P<result>ok|FAILED|interrupted)\s+\d+\.\d\d\s")


def _table(stdout: str) -> list[tuple[str, str]]:
    """The summary table's (step, result) rows, a clean-up step shortened to two words."""
    table = stdout.split("\nstep ", 1)[1].splitlines()[1:]
    matches = filter(None, map(_ROW.match, table))
    return [(" ".join(m["step"].split()[:2]), m["result"]) for m in matches]


def _rows(stdout: str) -> dict[str, str]:
    return dict(_table(stdout))


def _cycles(dev: Dev) -> tuple[int, int]:
    """instance-0's power-offs (hard, or the guest's own: dev's default) and starts so far,
    as the simulated rack counts them."""
    stats = dev.sim_stats()["instances"]["instance-0"]
    return stats["stops"] + stats["guest_power_offs"], stats["starts"]


def test_every_step_passes_and_nothing_is_left(dev: Dev, before: list[str]) -> None:
    stops, starts = _cycles(dev)
    # no flag, no environment: endpoint, kubelet dir and Oxide access come from dev's oxide.env
    result = run_cli("demo", "--dev-state", str(dev.state))
    assert result.returncode == 0, result.stdout + result.stderr
    assert _rows(result.stdout) == dict.fromkeys(STEPS, "ok")
    # the instance is watched while the attach runs: each run state on a line as it is seen
    # (how many of the short ones a poll catches depends on the machine), back to running
    lines = result.stdout.splitlines()
    live = [line for line in lines if line.startswith("demo: attach: ")]
    assert live[-1] == "demo: attach: instance-0 running", live
    assert lines.index(live[-1]) < lines.index(next(x for x in lines if "demo: attach ok" in x))
    # attach, attach of the restored volume, one detach of both (or two, unbatched)
    assert _cycles(dev)[0] - stops in (3, 4)
    assert _cycles(dev)[1] - starts == _cycles(dev)[0] - stops
    assert "the file reads back the same from it" in result.stdout  # the restored volume
    assert "demo: detach ok" in result.stdout and "2 volumes: instance-0 " in result.stdout
    assert "gone in CSI and in Oxide; nothing mounted" in result.stdout
    assert "every step passed, nothing left behind" in result.stdout


def test_refuses_to_run_unprivileged(dev: Dev) -> None:
    unprivileged = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    result = subprocess.run(
        [*unprivileged, sys.executable, "-m", "oxide_csi", "demo", "--endpoint", dev.endpoint],
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "needs root" in result.stderr
    assert result.stdout == ""


def test_clean_up_after_a_step_fails_in_the_middle(dev: Dev, before: list[str]) -> None:
    # Oxide refuses every snapshot request: the demo fails with the volume attached, staged,
    # published and written to
    fault = {"error_rate": 1.0, "error_statuses": [403], "path_regex": "^/v1/snapshots"}
    dev.sim("PUT", "/sim/faults", fault)
    try:
        result = run_cli("demo", "--dev-state", str(dev.state))
    finally:
        dev.sim("PUT", "/sim/faults", {"error_rate": 0.0, "path_regex": None})
    assert result.returncode == 1, result.stdout + result.stderr
    assert "oxide-csi demo: step snapshot failed: " in result.stderr
    rows = _rows(result.stdout)
    assert [rows[s] for s in STEPS[:6]] == ["ok"] * 6
    assert rows["snapshot"] == "FAILED"
    assert "restore" not in rows
    undone = [step for step, outcome in rows.items() if step.startswith("clean-up")]
    assert undone and all(rows[step] == "ok" for step in undone)
    assert "clean-up: unstage" in result.stdout
    assert "clean-up: delete volume" in result.stdout


def _interrupted_demo(
    dev: Dev, at: str, signum: int, when: Callable[[], object] = lambda: None
) -> tuple[int, str]:
    """Run the demo with explicit flags and no Oxide access; send ``signum`` once it printed
    a line starting with ``at`` and ``when()`` returned; its exit code and whole output."""
    args = ["demo", "--endpoint", dev.endpoint, "--kubelet-dir", str(dev.kubelet)]
    args += ["--dev-state", str(dev.root / "none")]
    demo = subprocess.Popen(
        [sys.executable, "-m", "oxide_csi", *args],
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    seen = []
    try:
        assert demo.stdout is not None
        for line in demo.stdout:
            seen.append(line)
            if line.startswith(at):
                when()
                demo.send_signal(signum)
                break
        seen.append(demo.communicate(timeout=120)[0])
    finally:
        if demo.poll() is None:
            demo.kill()
    return demo.returncode, "".join(seen)


def test_clean_up_after_ctrl_c(dev: Dev, before: list[str]) -> None:
    code, output = _interrupted_demo(dev, "demo: write ok", signal.SIGINT)
    assert code == 130, output
    assert "no Oxide access" in output  # without it, the attach shows its time only
    assert "attached (no Oxide access to show the instance)" in output
    assert {_rows(output)[s] for s in STEPS[:6]} == {"ok"}
    undone = [(s, r) for s, r in _table(output) if s.startswith("clean-up")]
    assert [s for s, _ in undone][-4:] == [
        "clean-up: unstage",
        "clean-up: remove",
        "clean-up: detach",
        "clean-up: delete",
    ]
    assert {r for _, r in undone} == {"ok"}


def test_sigterm_during_a_create_finds_and_deletes_what_it_made(
    dev: Dev, before: list[str]
) -> None:
    # Oxide takes its time over the snapshot's creation: SIGTERM arrives while it is made
    fault = {"latency_ms": 5000, "latency_rate": 1.0, "path_regex": "^/v1/snapshots$"}
    dev.sim("PUT", "/sim/faults", fault)
    posts = dev.requests("POST /v1/snapshots")

    def create_under_way() -> None:
        while dev.requests("POST /v1/snapshots") == posts:
            time.sleep(0.02)  # polls for an event (the request reached Oxide), not a wait

    try:
        code, output = _interrupted_demo(
            dev, "demo: snapshot ...", signal.SIGTERM, create_under_way
        )
    finally:
        dev.sim("PUT", "/sim/faults", {"latency_rate": 0.0, "path_regex": None})
    assert code == 130, output
    rows = _rows(output)
    assert rows.get("snapshot") == "interrupted", output
    assert rows["clean-up: find"] == "ok", output  # the create repeated, what it made deleted
    assert {r for s, r in rows.items() if s.startswith("clean-up")} == {"ok"}


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (the demo refuses to run without)")
def test_no_plugin_fails_the_first_step_and_says_what_to_do(short_tmp: Path) -> None:
    endpoint = f"unix://{short_tmp}/none.sock"
    result = run_cli("demo", "--endpoint", endpoint, "--kubelet-dir", str(short_tmp / "k"))
    assert result.returncode == 1
    assert "oxide-csi demo: step connect failed: UNAVAILABLE" in result.stderr
    assert f"nothing answers at {endpoint}: is the plugin running" in result.stderr
    assert not (short_tmp / "k").exists()  # nothing was made, so nothing is left
