"""Done-when of issue 17, through ``oxide-csi dev``: volumes from an image, and read-only ones.

A file written to a volume is snapshotted, the snapshot turned into an image through the
simulated Oxide API (as an operator would), and a volume provisioned with ``image=<that image>``
holds the file after staging -- never formatted. With ``readOnly: "true"`` the volume is an
Oxide read-only disk: the loop device refuses writes, the node mounts it read-only, and a write
through the mount fails.
"""

from __future__ import annotations

import errno
from pathlib import Path

import grpc
import httpx
import pytest

from oxide_csi.csi_v1 import csi_pb2, csi_pb2_grpc
from oxide_csi.tools import oxide_env
from oxide_csi.volume_contract import CTX_SERIAL
from tests.dev.devproc import (
    create_and_publish,
    dev_args,
    mount_capability,
    unpublish,
)
from tests.dev.helpers import ROOT_MARKS, loops_in, release_dev_state

pytestmark = ROOT_MARKS


def _staged(
    node: csi_pb2_grpc.NodeStub, volume: csi_pb2.Volume, context: dict[str, str], path: Path
) -> None:
    path.mkdir(parents=True, exist_ok=True)
    node.NodeStageVolume(
        csi_pb2.NodeStageVolumeRequest(
            volume_id=volume.volume_id,
            publish_context=context,
            staging_target_path=str(path),
            volume_capability=mount_capability(),
            volume_context=volume.volume_context,
        ),
        timeout=60,
    )


def _unstage(node: csi_pb2_grpc.NodeStub, volume_id: str, path: Path) -> None:
    request = csi_pb2.NodeUnstageVolumeRequest(volume_id=volume_id, staging_target_path=str(path))
    node.NodeUnstageVolume(request, timeout=60)


def _image_of(oxide: httpx.Client, volume_id: str) -> str:
    """Snapshot the disk and make a project image of it, as an operator would."""
    params = {"project": "default"}
    snap = oxide.post(
        "/v1/snapshots",
        params=params,
        json={"name": "data-snap", "description": "", "disk": volume_id},
    )
    assert snap.status_code == 201, snap.text
    body = {
        "name": "data-image",
        "description": "a filesystem with one file",
        "os": "none",
        "version": "1",
        "source": {"type": "snapshot", "id": snap.json()["id"]},
    }
    image = oxide.post("/v1/images", params=params, json=body)
    assert image.status_code == 201, image.text
    return "data-image"


def test_volumes_from_an_image_hold_its_files(plugin_factory, plugin_env, short_tmp: Path) -> None:
    endpoint = f"unix://{short_tmp / 'csi.sock'}"
    state = short_tmp / "state"
    kubelet = state / "kubelet" / "plugins/kubernetes.io/csi/csi.oxide.computer"
    plugin = plugin_factory(dev_args(endpoint, state), plugin_env, short_tmp)
    try:
        channel = plugin.wait_ready(endpoint)
        node = csi_pb2_grpc.NodeStub(channel)
        controller = csi_pb2_grpc.ControllerStub(channel)
        client_env = oxide_env.read(state / oxide_env.FILE_NAME)  # what dev mode tells clients
        oxide = httpx.Client(
            base_url=client_env["OXIDE_HOST"],
            headers={"authorization": f"Bearer {client_env['OXIDE_TOKEN']}"},
            timeout=30,
        )
        node_id = node.NodeGetInfo(csi_pb2.NodeGetInfoRequest(), timeout=10).node_id

        # a volume with a file on it, unstaged so its filesystem is clean
        source, context = create_and_publish(channel, "pvc-origin", node_id, fs_type="ext4")
        _staged(node, source, context, kubelet / "origin")
        (kubelet / "origin" / "hello.txt").write_text("from the image\n")
        _unstage(node, source.volume_id, kubelet / "origin")
        image = _image_of(oxide, source.volume_id)

        cap = mount_capability()
        for name, params in (
            ("pvc-from-image", {"image": image}),
            ("pvc-read-only", {"image": image, "readOnly": "true"}),
        ):
            request = csi_pb2.CreateVolumeRequest(
                name=name, volume_capabilities=[cap], parameters=params
            )
            volume = controller.CreateVolume(request, timeout=60).volume
            published = controller.ControllerPublishVolume(
                csi_pb2.ControllerPublishVolumeRequest(
                    volume_id=volume.volume_id, node_id=node_id, volume_capability=cap
                ),
                timeout=60,
            )
            staging = kubelet / name
            _staged(node, volume, dict(published.publish_context), staging)
            assert (staging / "hello.txt").read_text() == "from the image\n"
            probe = staging / "written.txt"
            (loop,) = loops_in(state / "devices")[published.publish_context[CTX_SERIAL]]
            device_ro = Path(f"/sys/block/{loop}/ro").read_text().strip()
            assert device_ro == ("1" if params.get("readOnly") else "0")
            if params.get("readOnly") == "true":
                with pytest.raises(OSError) as refused:
                    probe.write_text("must not land")
                assert refused.value.errno == errno.EROFS
                options = _mount_options(staging)
                assert "ro" in options.split(","), options
            else:
                probe.write_text("a writable copy\n")
            _unstage(node, volume.volume_id, staging)
            unpublish(channel, volume.volume_id, node_id)
        _static_volumes(oxide, channel, node_id, state, kubelet)
        oxide.close()
        channel.close()
        plugin.terminate()
        assert plugin.wait() == 0, plugin.output()
    finally:
        release_dev_state(state)


def _mount_options(path: Path) -> str:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == str(path):
            return fields[5]
    raise AssertionError(f"{path} is not mounted")


def _raw_disk(oxide: httpx.Client, name: str, source: dict[str, object]) -> str:
    body = {
        "name": name,
        "description": "made by an operator",
        "size": 1 << 30,
        "disk_backend": {"type": "distributed", "disk_source": source},
    }
    made = oxide.post("/v1/disks", params={"project": "default"}, json=body)
    assert made.status_code == 201, made.text
    return str(made.json()["id"])


def _static_volumes(
    oxide: httpx.Client, channel: grpc.Channel, node_id: str, state: Path, kubelet: Path
) -> None:
    """Disks made outside the plugin, used by id as static volumes: one holding the image's
    filesystem is staged as it is; one with a partition table on the whole device is
    FAILED_PRECONDITION, never formatted; neither is ever deleted."""
    controller = csi_pb2_grpc.ControllerStub(channel)
    node = csi_pb2_grpc.NodeStub(channel)
    image = oxide.get("/v1/images/data-image", params={"project": "default"}).json()
    with_fs = _raw_disk(oxide, "operators-copy", {"type": "image", "image_id": image["id"]})
    partitioned = _raw_disk(oxide, "os-install-disk", {"type": "blank", "block_size": 4096})
    with open(state / "disks" / f"{partitioned}.img", "r+b") as fh:
        fh.seek(446)  # one MBR partition entry (type 0x83, from sector 2048), then the signature
        fh.write(bytes([0, 0, 0, 0, 0x83, 0, 0, 0]) + (2048).to_bytes(4, "little"))
        fh.write((100_000).to_bytes(4, "little"))
        fh.seek(510)
        fh.write(b"\x55\xaa")
    cap = mount_capability()
    for disk_id, name in ((with_fs, "static-fs"), (partitioned, "static-parts")):
        published = controller.ControllerPublishVolume(
            csi_pb2.ControllerPublishVolumeRequest(
                volume_id=disk_id, node_id=node_id, volume_capability=cap
            ),
            timeout=60,
        )
        volume = csi_pb2.Volume(volume_id=disk_id)  # a static PV carries no context of ours
        staging = kubelet / name
        if disk_id == with_fs:
            _staged(node, volume, dict(published.publish_context), staging)
            assert (staging / "hello.txt").read_text() == "from the image\n"
            _unstage(node, disk_id, staging)
        else:
            with pytest.raises(grpc.RpcError) as refused:
                _staged(node, volume, dict(published.publish_context), staging)
            assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "partition" in str(refused.value.details()), refused.value.details()
        unpublish(channel, disk_id, node_id)
        with pytest.raises(grpc.RpcError) as kept:
            controller.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=disk_id), timeout=30)
        assert kept.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert oxide.get(f"/v1/disks/{disk_id}").status_code == 200
    with open(state / "disks" / f"{partitioned}.img", "rb") as fh:
        fh.seek(510)
        assert fh.read(2) == b"\x55\xaa"  # untouched
