"""SIGKILL the node plugin inside NodeStageVolume, restart it, and retry the stage.

Two moments matter: a new disk formatted but not yet mounted, and a disk mounted but the call
not yet answered (the mount outlives the process, as it does on a real node). In both the
retried stage must succeed without formatting again -- the filesystem's UUID is unchanged --
and data written earlier must be intact. The real ``oxide-csi serve --mode node`` process runs
against real loop devices, mkfs and mount.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from oxide_csi import failpoints
from oxide_csi.csi_v1 import csi_pb2, csi_pb2_grpc
from tests.node.conftest import contexts, mount_cap
from tests.node.plane import Plane
from tests.reliability.report import record

SERIAL = "csi-0f1e2d3c4b5a6978"


@pytest.fixture
def plane(short_tmp: Path) -> Iterator[Plane]:
    made = Plane(short_tmp / "p")
    try:
        yield made
    finally:
        made.cleanup()


class NodeProcess:
    def __init__(self, plane: Plane, factory: Any, env: dict[str, str], tmp: Path) -> None:
        self.endpoint = f"unix://{tmp / 'node.sock'}"
        self.args = [
            "serve",
            "--mode",
            "node",
            "--node-id",
            "instance-0",
            "--endpoint",
            self.endpoint,
            "--kubelet-dir",
            str(plane.kubelet_dir),
        ]
        self.env = {**env, "OXIDE_CSI_LOOP_DEVICE_DIR": str(plane.device_dir)}
        self.factory = factory
        self.tmp = tmp

    def start(self, failpoint: str = "") -> tuple[Any, csi_pb2_grpc.NodeStub]:
        env = {**self.env, failpoints.ENV: failpoint} if failpoint else self.env
        proc = self.factory(self.args, env, self.tmp)
        return proc, csi_pb2_grpc.NodeStub(proc.wait_ready(self.endpoint))


def _stage(stub: csi_pb2_grpc.NodeStub, staging: Path) -> None:
    stub.NodeStageVolume(
        csi_pb2.NodeStageVolumeRequest(
            volume_id="vol-crash",
            staging_target_path=str(staging),
            volume_capability=mount_cap("ext4"),
            **contexts(SERIAL),
        ),
        timeout=60,
    )


def _unstage(stub: csi_pb2_grpc.NodeStub, staging: Path) -> None:
    stub.NodeUnstageVolume(
        csi_pb2.NodeUnstageVolumeRequest(volume_id="vol-crash", staging_target_path=str(staging)),
        timeout=60,
    )


def _killed_during_stage(node: NodeProcess, step: str, staging: Path) -> None:
    doomed, stub = node.start(step)
    with pytest.raises(grpc.RpcError) as failed:
        _stage(stub, staging)
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
    assert doomed.wait() == -9
    assert f"failpoint {step} hit" in doomed.output()


def test_killed_between_format_and_mount(plane: Plane, plugin_factory, plugin_env, short_tmp):
    loop = plane.attach(SERIAL)
    node = NodeProcess(plane, plugin_factory, plugin_env, short_tmp)
    staging = plane.staging()
    _killed_during_stage(node, failpoints.STAGE_AFTER_FORMAT, staging)
    formatted = loop.signature()
    assert formatted.get("TYPE") == "ext4"
    assert plane.mounts() == []  # it died before mounting

    revived, stub = node.start()
    _stage(stub, staging)  # the CO's retry
    assert loop.signature()["UUID"] == formatted["UUID"]  # mounted, not formatted again
    (staging / "after-crash").write_text("kept")
    record("node crash: SIGKILL after format: retried stage mounted it, no second mkfs")
    _unstage(stub, staging)
    revived.terminate()
    assert revived.wait() == 0


def test_killed_between_mount_and_answer(plane: Plane, plugin_factory, plugin_env, short_tmp):
    loop = plane.attach(SERIAL)
    node = NodeProcess(plane, plugin_factory, plugin_env, short_tmp)
    staging = plane.staging()
    first, stub = node.start()
    _stage(stub, staging)
    payload = os.urandom(1 << 20)
    (staging / "data.bin").write_bytes(payload)
    os.sync()
    _unstage(stub, staging)
    first.terminate()
    assert first.wait() == 0
    uuid_before = loop.signature()["UUID"]

    _killed_during_stage(node, failpoints.STAGE_AFTER_MOUNT, staging)
    assert str(staging.resolve()) in plane.mounts()  # the mount outlived the process

    revived, stub = node.start()
    _stage(stub, staging)  # finds its own stage: success, nothing redone
    assert (staging / "data.bin").read_bytes() == payload
    assert loop.signature()["UUID"] == uuid_before
    record("node crash: SIGKILL after mount: retried stage succeeded, 1 MiB of data intact")
    _unstage(stub, staging)
    assert plane.mounts() == []
    revived.terminate()
    assert revived.wait() == 0
