"""Secrets stay secret in the real controller process, at debug level, while things go wrong.

The Oxide token reaches the process through its environment; ``csi_secret`` fields reach it in
requests. The simulator injects failures so that error paths (retries, status messages, logged
exceptions) run too. Neither the token nor any secret value may appear anywhere in the
process's output or in any status message a caller receives.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from oxide_csi.csi_v1 import csi_pb2, csi_pb2_grpc
from oxide_sim import FaultConfig, SimConfig, SimulatorServer
from tests.controller.conftest import mount_cap
from tests.reliability.report import record

TOKEN = "oxide-token-neverlogme0123456789abcdef"
SECRET = "s3cr3t-Value-9bd1e2"


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[SimulatorServer]:
    faults = FaultConfig(error_rate=0.3, error_statuses=[500, 503], phase="random", seed=5)
    cfg = SimConfig(
        token=TOKEN,
        instances=1,
        stop_seconds=0.02,
        start_seconds=0.02,
        state_dir=tmp_path / "sim",
        faults=faults,
    )
    with SimulatorServer(cfg) as server:
        yield server


def test_no_secret_in_logs_or_statuses(
    sim: SimulatorServer, plugin_factory, plugin_env, short_tmp: Path
) -> None:
    endpoint = f"unix://{short_tmp / 'ctl.sock'}"
    args = [
        "serve",
        "--mode",
        "controller",
        "--endpoint",
        endpoint,
        "--log-level",
        "debug",
        "--state-dir",
        str(short_tmp / "state"),
        "--attach-batch-window",
        "0.02",
    ]
    env = {**plugin_env, "OXIDE_HOST": sim.url, "OXIDE_TOKEN": TOKEN, "OXIDE_PROJECT": "default"}
    proc = plugin_factory(args, env, short_tmp)
    stub = csi_pb2_grpc.ControllerStub(proc.wait_ready(endpoint))
    secrets = {"password": SECRET, "token": SECRET + "-2"}
    details: list[str] = []

    def call(method: str, request: object) -> None:
        try:
            getattr(stub, method)(request, timeout=30)
        except grpc.RpcError as exc:
            details.append(str(exc.details()))

    for i in range(6):
        call(
            "CreateVolume",
            csi_pb2.CreateVolumeRequest(
                name=f"pvc-secret-{i}", volume_capabilities=[mount_cap()], secrets=secrets
            ),
        )
        call(
            "CreateVolume",
            csi_pb2.CreateVolumeRequest(
                name=f"pvc-bad-{i}", parameters={"unknown": SECRET}, secrets=secrets
            ),
        )
        call("DeleteVolume", csi_pb2.DeleteVolumeRequest(volume_id=SECRET, secrets=secrets))
        call(
            "ControllerPublishVolume",
            csi_pb2.ControllerPublishVolumeRequest(
                volume_id="x", node_id="y", volume_capability=mount_cap(), secrets=secrets
            ),
        )
        call(
            "CreateSnapshot",
            csi_pb2.CreateSnapshotRequest(
                name=f"snap-{i}", source_volume_id="nope", secrets=secrets
            ),
        )
    proc.terminate()
    assert proc.wait() == 0
    output = proc.output()
    assert '"grpc request"' in output or "grpc request" in output  # debug lines were written
    assert "CreateVolume" in output
    for leaked in (TOKEN, SECRET):
        assert leaked not in output
        assert all(leaked not in d for d in details)
    record(
        f"secrets: 30 calls at debug level ({len(details)} failed on purpose or by fault), "
        f"{len(output.splitlines())} log lines: token and csi_secret values found 0 times"
    )
