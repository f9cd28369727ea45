"""A whole plugin on this machine for the node-side benchmarks: ``oxide-csi dev`` (simulated
Oxide, device plane, controller and node in one process), plus what a kubelet would do: make
the staging and target directories, and call the Node service.

Why ``oxide-csi dev``: a disk the controller attaches to the simulated instance ``instance-0``
becomes a real loop device on this machine, so NodeStageVolume really formats and mounts and
the volume is really writable -- the same work a node does on a rack, minus the NVMe driver.
Needs root.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.common import clean_env, wait_for_channel
from oxide_csi.csi_v1 import csi_pb2, csi_pb2_grpc
from oxide_csi.tools import oxide_env

DRIVER_DIR = "plugins/kubernetes.io/csi/csi.oxide.computer"


def capability(fs_type: str = "ext4") -> csi_pb2.VolumeCapability:
    mode = csi_pb2.VolumeCapability.AccessMode.SINGLE_NODE_WRITER
    return csi_pb2.VolumeCapability(
        mount=csi_pb2.VolumeCapability.MountVolume(fs_type=fs_type),
        access_mode=csi_pb2.VolumeCapability.AccessMode(mode=mode),
    )


class DevProcess:
    """``python -m oxide_csi dev`` in ``workdir``; ``channel`` serves Controller and Node."""

    def __init__(
        self,
        workdir: Path,
        stop_seconds: float,
        start_seconds: float,
        *,
        instances: int = 2,
        extra: Sequence[str] = (),
    ) -> None:
        self.state = workdir / "state"
        self.kubelet = self.state / "kubelet"
        self.endpoint = f"unix://{workdir / 'dev.sock'}"
        argv = [sys.executable, "-m", "oxide_csi", "dev", "--endpoint", self.endpoint]
        argv += ["--state-dir", str(self.state), "--log-level", "warning"]
        argv += ["--stop-seconds", str(stop_seconds), "--start-seconds", str(start_seconds)]
        argv += ["--instances", str(instances), *extra]
        self.log_path = workdir / "dev.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            argv, env=clean_env(), stdout=self._log, stderr=subprocess.STDOUT
        )
        self.channel = wait_for_channel(self.endpoint, self.proc, self.log_path)
        self.controller = csi_pb2_grpc.ControllerStub(self.channel)
        self.node = csi_pb2_grpc.NodeStub(self.channel)
        info = self.node.NodeGetInfo(csi_pb2.NodeGetInfoRequest(), timeout=10)
        self.node_id: str = info.node_id
        #: Where the simulated Oxide is and its token (new at every start): dev's ``oxide.env``.
        self.oxide = oxide_env.read(self.state / oxide_env.FILE_NAME)

    def close(self) -> None:
        self.channel.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


@dataclass
class Volume:
    """One volume's ids and the paths a kubelet gives it."""

    volume: csi_pb2.Volume
    staging: Path
    target: Path
    publish_context: dict[str, str]


def kubelet_paths(kubelet: Path, name: str) -> tuple[Path, Path]:
    """Staging and target paths as kubelet lays them out, created as kubelet would."""
    staging = kubelet / DRIVER_DIR / name / "globalmount"
    pod = kubelet / "pods" / str(uuid.uuid4())
    target = pod / "volumes/kubernetes.io~csi" / name / "mount"
    staging.mkdir(parents=True, exist_ok=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    return staging, target


def create(controller: csi_pb2_grpc.ControllerStub, name: str, size: int) -> csi_pb2.Volume:
    req = csi_pb2.CreateVolumeRequest(
        name=name,
        capacity_range=csi_pb2.CapacityRange(required_bytes=size),
        volume_capabilities=[capability()],
    )
    volume: csi_pb2.Volume = controller.CreateVolume(req, timeout=120).volume
    return volume


def controller_publish(
    controller: csi_pb2_grpc.ControllerStub, volume: csi_pb2.Volume, node_id: str
) -> dict[str, str]:
    req = csi_pb2.ControllerPublishVolumeRequest(
        volume_id=volume.volume_id,
        node_id=node_id,
        volume_capability=capability(),
        volume_context=volume.volume_context,
    )
    return dict(controller.ControllerPublishVolume(req, timeout=600).publish_context)


def stage(node: csi_pb2_grpc.NodeStub, vol: Volume) -> None:
    node.NodeStageVolume(
        csi_pb2.NodeStageVolumeRequest(
            volume_id=vol.volume.volume_id,
            publish_context=vol.publish_context,
            staging_target_path=str(vol.staging),
            volume_capability=capability(),
            volume_context=vol.volume.volume_context,
        ),
        timeout=300,
    )


def publish(node: csi_pb2_grpc.NodeStub, vol: Volume) -> None:
    node.NodePublishVolume(
        csi_pb2.NodePublishVolumeRequest(
            volume_id=vol.volume.volume_id,
            publish_context=vol.publish_context,
            staging_target_path=str(vol.staging),
            target_path=str(vol.target),
            volume_capability=capability(),
            volume_context=vol.volume.volume_context,
        ),
        timeout=120,
    )


def write_probe(target: Path) -> None:
    """Prove the target is a writable filesystem: write, flush to the disk, read back."""
    probe = target / "bench-probe"
    with probe.open("wb") as out:
        out.write(b"oxide-csi bench\n")
        out.flush()
        os.fsync(out.fileno())
    if probe.read_bytes() != b"oxide-csi bench\n":
        raise RuntimeError(f"{target} did not keep what was written")


def teardown(
    controller: csi_pb2_grpc.ControllerStub, node: csi_pb2_grpc.NodeStub, vol: Volume, node_id: str
) -> None:
    """Everything back: node unpublish and unstage, controller unpublish, delete."""
    node_down(node, vol)
    controller_unpublish(controller, vol.volume.volume_id, node_id)
    delete(controller, vol.volume.volume_id)


def node_down(node: csi_pb2_grpc.NodeStub, vol: Volume) -> None:
    """What kubelet does when the pod is gone: unpublish, then unstage."""
    volume_id = vol.volume.volume_id
    node.NodeUnpublishVolume(
        csi_pb2.NodeUnpublishVolumeRequest(volume_id=volume_id, target_path=str(vol.target)),
        timeout=120,
    )
    node.NodeUnstageVolume(
        csi_pb2.NodeUnstageVolumeRequest(volume_id=volume_id, staging_target_path=str(vol.staging)),
        timeout=120,
    )


def controller_unpublish(
    controller: csi_pb2_grpc.ControllerStub, volume_id: str, node_id: str
) -> None:
    controller.ControllerUnpublishVolume(
        csi_pb2.ControllerUnpublishVolumeRequest(volume_id=volume_id, node_id=node_id),
        timeout=600,
    )


def delete(controller: csi_pb2_grpc.ControllerStub, volume_id: str) -> None:
    controller.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=volume_id), timeout=120)
