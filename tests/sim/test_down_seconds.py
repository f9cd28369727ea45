"""``/sim/stats`` reports, per instance, the seconds it spent not running (``down_seconds``).

Why: the workload benchmark (``bench/workloads.py``) reports how long each node was down for
its workloads; the simulator is the one that knows when an instance stopped running and when it
ran again. The bounds below come from the clock around the calls, never from sleeps: a stop and
a start keep the instance down at least ``stop_seconds + start_seconds`` (both transitions are
scheduled that far ahead), and at most the time from the stop request to seeing it run again.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from tests.sim.conftest import SimFactory
from tests.sim.helpers import P, client, stop_instance, wait_run_state


def _down(c: httpx.Client, name: str) -> float:
    value: float = c.get("/sim/stats").json()["instances"][name]["down_seconds"]
    return value


def test_a_stop_and_start_count_as_down_time(make_sim: SimFactory) -> None:
    sim = make_sim(stop_seconds=0.2, start_seconds=0.3)
    with client(sim) as c:
        assert _down(c, "instance-0") == 0.0
        began = time.monotonic()
        stop_instance(c)
        assert c.post("/v1/instances/instance-0/start", params=P).status_code == 202
        wait_run_state(c, "instance-0", "running")
        elapsed = time.monotonic() - began
        down = _down(c, "instance-0")
        assert 0.5 - 0.01 <= down <= elapsed + 0.01
        # running again: the figure stays put
        assert _down(c, "instance-0") == down
        assert _down(c, "instance-1") == 0.0


def test_an_instance_still_down_keeps_counting_and_survives_a_restart(
    make_sim: SimFactory, tmp_path: Path
) -> None:
    state_dir = tmp_path / "sim"
    sim = make_sim(stop_seconds=0.1, state_dir=state_dir)
    with client(sim) as c:
        stop_instance(c)
        first = _down(c, "instance-0")
        wait_until = time.monotonic() + 0.2
        while time.monotonic() < wait_until:
            time.sleep(0.05)
        assert _down(c, "instance-0") >= first + 0.2 - 0.01
    sim.stop()
    again = make_sim(stop_seconds=0.1, state_dir=state_dir)
    with client(again) as c:
        # the period that began before the restart is still open, and still counted
        assert _down(c, "instance-0") >= first + 0.2 - 0.01
        assert c.post("/v1/instances/instance-0/start", params=P).status_code == 202
        wait_run_state(c, "instance-0", "running")
        assert _down(c, "instance-0") >= first + 0.2
