"""Done-when of issue 17: the controller fills exactly the rack's slots, on each generation.

Real processes: ``oxide-csi simulator --release vN`` and ``oxide-csi serve --mode controller``
with no slot flag, spoken to over gRPC. On v17 (8 slots, boot disk counted) seven volumes are
published to one instance and the eighth is RESOURCE_EXHAUSTED without a stop; on v22 (12
slots) the twelfth is refused after eleven. The controller learns the limit from the rack and
logs the generation it found once.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from oxide_csi.csi_v1 import csi_pb2, csi_pb2_grpc
from tests.controller.conftest import GIB, mount_cap

TOKEN = "oxide-token-releaseslots0123456789"


@pytest.fixture
def spawned() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


def _simulator(procs: list[subprocess.Popen[str]], release: str) -> str:
    argv = [sys.executable, "-m", "oxide_csi", "simulator", "--listen", "127.0.0.1:0"]
    argv += ["--token", TOKEN, "--instances", "1", "--release", release]
    argv += ["--stop-seconds", "0.05", "--start-seconds", "0.05"]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True
    )
    procs.append(proc)
    assert proc.stdout is not None
    return proc.stdout.readline().strip()


@pytest.mark.parametrize(("release", "slots"), [("v17", 8), ("v22", 12)])
def test_controller_fills_the_racks_slots_and_refuses_one_more(
    spawned: list[subprocess.Popen[str]],
    plugin_factory: Any,
    plugin_env: dict[str, str],
    short_tmp: Path,
    release: str,
    slots: int,
) -> None:
    url = _simulator(spawned, release)
    endpoint = f"unix://{short_tmp}/ctl.sock"
    env = {**plugin_env, "OXIDE_HOST": url, "OXIDE_TOKEN": TOKEN, "OXIDE_PROJECT": "default"}
    args = ["serve", "--mode", "controller", "--endpoint", endpoint]
    args += ["--state-dir", str(short_tmp / "state"), "--attach-batch-window", "0.5"]
    plugin = plugin_factory(args, env, short_tmp)
    channel = plugin.wait_ready(endpoint)
    stub = csi_pb2_grpc.ControllerStub(channel)
    with httpx.Client(base_url=url, timeout=10) as hooks:
        auth = {"authorization": f"Bearer {TOKEN}"}
        node = hooks.get("/v1/instances/instance-0", params={"project": "default"}, headers=auth)
        node_id = node.json()["id"]

        def create(i: int) -> str:
            req = csi_pb2.CreateVolumeRequest(
                name=f"pvc-slot-{i}",
                capacity_range=csi_pb2.CapacityRange(required_bytes=GIB),
                volume_capabilities=[mount_cap()],
            )
            return str(stub.CreateVolume(req, timeout=30).volume.volume_id)

        def publish(volume_id: str) -> csi_pb2.ControllerPublishVolumeResponse:
            req = csi_pb2.ControllerPublishVolumeRequest(
                volume_id=volume_id, node_id=node_id, volume_capability=mount_cap()
            )
            answer: csi_pb2.ControllerPublishVolumeResponse = stub.ControllerPublishVolume(
                req, timeout=120
            )
            return answer

        volumes = [create(i) for i in range(slots)]  # created on either generation
        with ThreadPoolExecutor(slots - 1) as pool:
            list(pool.map(publish, volumes[:-1]))  # the boot disk holds the last slot
        stats = hooks.get("/sim/stats").json()["instances"]["instance-0"]
        assert stats["state"] == "running"
        with pytest.raises(grpc.RpcError) as refused:
            publish(volumes[-1])
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert f"of {slots} in use" in str(refused.value.details())
        after = hooks.get("/sim/stats").json()["instances"]["instance-0"]
        assert after["stops"] == stats["stops"]  # refused before anything was stopped
        listed = hooks.get(
            f"/v1/instances/{node_id}/disks", params={"limit": 100}, headers=auth
        ).json()["items"]
        assert len(listed) == slots
    channel.close()
    plugin.terminate()
    assert plugin.wait() == 0
    generation = "v17 or older" if release == "v17" else "v18 or later"
    found = [line for line in plugin.output().splitlines() if "detected Oxide API gen" in line]
    assert len(found) == 1 and generation in found[0], plugin.output()
