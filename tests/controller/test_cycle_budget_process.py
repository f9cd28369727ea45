"""``--max-concurrent-cycles``: the setting, and the real controller process holding it while
four publishes to four instances are in flight, watched from the simulated rack."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from oxide_csi import cli
from oxide_csi.config import build_serve_config
from oxide_csi.config_common import ConfigError
from oxide_csi.csi_v1 import csi_pb2, csi_pb2_grpc
from oxide_sim import SimConfig, SimulatorServer
from tests.controller.conftest import mount_cap

TOKEN = "oxide-token-cyclebudget0123456789"
BASE = {
    "OXIDE_HOST": "https://r",
    "OXIDE_TOKEN": TOKEN,
    "OXIDE_PROJECT": "p",
    "OXIDE_CSI_CONTROLLER_INSTANCE_ID": "none",
}
DOWN = {"stopping", "stopped", "starting"}


@pytest.mark.parametrize(
    ("flags", "env", "expected"),
    [
        ({}, {}, 2),
        ({"max_concurrent_cycles": "1"}, {}, 1),
        ({}, {"OXIDE_CSI_MAX_CONCURRENT_CYCLES": "5"}, 5),
        ({"max_concurrent_cycles": "3"}, {"OXIDE_CSI_MAX_CONCURRENT_CYCLES": "5"}, 3),
    ],
)
def test_max_concurrent_cycles_setting(
    flags: dict[str, object], env: dict[str, str], expected: int
) -> None:
    config = build_serve_config({"mode": "controller", **flags}, {**BASE, **env})
    assert config.controller is not None
    assert config.controller.max_concurrent_cycles == expected


@pytest.mark.parametrize("raw", ["0", "-1", "two", "1.5"])
def test_max_concurrent_cycles_must_be_a_positive_whole_number(raw: str) -> None:
    with pytest.raises(ConfigError, match="max concurrent cycles"):
        build_serve_config({"mode": "controller", "max_concurrent_cycles": raw}, BASE)


def test_the_flag_is_on_the_command_line() -> None:
    args = cli._parser().parse_args(["serve", "--max-concurrent-cycles", "4"])
    assert args.max_concurrent_cycles == "4"


@pytest.fixture
def rack(tmp_path: Path) -> Any:
    cfg = SimConfig(
        token=TOKEN, instances=4, stop_seconds=0.4, start_seconds=0.2, state_dir=tmp_path / "sim"
    )
    with SimulatorServer(cfg) as server:
        yield server


def test_four_publishes_take_at_most_two_instances_down(
    rack: SimulatorServer, plugin_factory: Any, plugin_env: dict[str, str], short_tmp: Path
) -> None:
    endpoint = f"unix://{short_tmp / 'ctl.sock'}"
    args = ["serve", "--mode", "controller", "--endpoint", endpoint]
    args += ["--state-dir", str(short_tmp / "state"), "--attach-batch-window", "0.1"]
    args += ["--max-concurrent-cycles", "2"]
    env = {**plugin_env, "OXIDE_HOST": rack.url, "OXIDE_TOKEN": TOKEN, "OXIDE_PROJECT": "default"}
    proc = plugin_factory(args, env, short_tmp)
    stub = csi_pb2_grpc.ControllerStub(proc.wait_ready(endpoint))

    def stats() -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(f"{rack.url}/sim/stats", timeout=10).json()
        return body

    instances = {name: entry["id"] for name, entry in stats()["instances"].items()}
    assert len(instances) == 4
    volumes = [
        stub.CreateVolume(
            csi_pb2.CreateVolumeRequest(name=f"pvc-budget-{i}", volume_capabilities=[mount_cap()]),
            timeout=30,
        ).volume.volume_id
        for i in range(4)
    ]

    def publish(volume_id: str, node_id: str) -> None:
        request = csi_pb2.ControllerPublishVolumeRequest(
            volume_id=volume_id, node_id=node_id, volume_capability=mount_cap()
        )
        stub.ControllerPublishVolume(request, timeout=120)

    seen: list[int] = []
    done = threading.Event()

    def watch() -> None:  # the rack's view while the publishes are in flight
        while not done.is_set():
            states = [entry["state"] for entry in stats()["instances"].values()]
            seen.append(sum(state in DOWN for state in states))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with ThreadPoolExecutor(4) as pool:
            calls = [
                pool.submit(publish, v, iid)
                for v, iid in zip(volumes, instances.values(), strict=True)
            ]
            for call in calls:
                call.result()
    finally:
        done.set()
        watcher.join()

    final = stats()
    assert max(seen) <= 2 and 2 in seen, seen
    assert final["most_down_at_once"] == 2
    assert [entry["stops"] for entry in final["instances"].values()] == [1, 1, 1, 1]
    assert all(entry["state"] == "running" for entry in final["instances"].values())
    proc.terminate()
    assert proc.wait() == 0
