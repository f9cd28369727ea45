"""Request paths: only normalised absolute paths inside the kubelet directory are accepted."""

from __future__ import annotations

import os
from pathlib import Path

import grpc
import pytest

from oxide_csi.csi_v1 import csi_pb2
from oxide_csi.errors import InvalidArgument
from oxide_csi.node.paths import PathGuard
from tests.node.conftest import SERIAL_A, Node, contexts, mount_cap
from tests.rpc import code_of

pytestmark = pytest.mark.root


@pytest.fixture
def kubelet(tmp_path: Path) -> Path:
    root = tmp_path / "kubelet"
    (root / "pods").mkdir(parents=True)
    return root


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "relative/path",
        "pods/x",
        "{k}/pods/../../escape",
        "{k}/pods/./x",
        "{k}//pods",
        "{k}/pods/",
        "{k}",
        "{k}-sibling/pods",
        "/etc",
        "{k}/pods/x\x00y",
        "{k}/pods/x\ny",
    ],
)
def test_guard_refuses(kubelet: Path, raw: str) -> None:
    with pytest.raises(InvalidArgument):
        PathGuard(kubelet).check(raw.format(k=kubelet))


def test_guard_accepts_and_resolves_symlinks_inside(kubelet: Path) -> None:
    guard = PathGuard(kubelet)
    assert guard.check(f"{kubelet}/pods/new/target") == kubelet / "pods/new/target"
    (kubelet / "alias").symlink_to(kubelet / "pods")
    assert guard.check(f"{kubelet}/alias/t") == kubelet / "pods/t"


def test_guard_refuses_a_symlink_leading_out(kubelet: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (kubelet / "pods" / "escape").symlink_to(outside)
    guard = PathGuard(kubelet)
    with pytest.raises(InvalidArgument, match="symlink"):
        guard.check(f"{kubelet}/pods/escape/target")
    (kubelet / "pods" / "target-link").symlink_to(outside / "t")
    with pytest.raises(InvalidArgument, match="symlink"):
        guard.check(f"{kubelet}/pods/target-link")


def test_guard_accepts_paths_under_a_symlinked_kubelet_dir(tmp_path: Path) -> None:
    real = tmp_path / "real-kubelet"
    real.mkdir()
    link = tmp_path / "kubelet"
    link.symlink_to(real)
    guard = PathGuard(link)
    assert guard.check(f"{link}/pods/x") == real / "pods/x"
    assert guard.check(f"{real}/pods/x") == real / "pods/x"


def test_guard_wants_a_sane_kubelet_dir() -> None:
    for bad in (Path("relative"), Path("/")):
        with pytest.raises(ValueError):
            PathGuard(bad)


async def test_rpcs_refuse_paths_outside_the_kubelet_dir(node: Node, tmp_path: Path) -> None:
    plane = node.plane
    plane.attach(SERIAL_A)
    kubelet = plane.kubelet_dir
    outside = plane.base / "outside"
    outside.mkdir()
    (kubelet / "pods").mkdir(exist_ok=True)
    (kubelet / "pods" / "escape").symlink_to(outside)
    bad_paths = [
        str(outside),
        f"{kubelet}/pods/../../outside",
        f"{kubelet}/pods/escape/target",
        "pods/relative",
    ]
    staging = plane.staging()
    for bad in bad_paths:
        stage = node.stub.NodeStageVolume(
            csi_pb2.NodeStageVolumeRequest(
                volume_id="vol-a",
                staging_target_path=bad,
                volume_capability=mount_cap("ext4"),
                **contexts(SERIAL_A),
            )
        )
        assert await code_of(stage) == grpc.StatusCode.INVALID_ARGUMENT, bad
    await node.stage(staging, mount_cap("ext4"))
    for bad in bad_paths:
        publish = node.stub.NodePublishVolume(
            csi_pb2.NodePublishVolumeRequest(
                volume_id="vol-a",
                staging_target_path=str(staging),
                target_path=bad,
                volume_capability=mount_cap("ext4"),
                **contexts(SERIAL_A),
            )
        )
        assert await code_of(publish) == grpc.StatusCode.INVALID_ARGUMENT, bad
        unpublish = node.stub.NodeUnpublishVolume(
            csi_pb2.NodeUnpublishVolumeRequest(volume_id="vol-a", target_path=bad)
        )
        assert await code_of(unpublish) == grpc.StatusCode.INVALID_ARGUMENT, bad
        unstage = node.stub.NodeUnstageVolume(
            csi_pb2.NodeUnstageVolumeRequest(volume_id="vol-a", staging_target_path=bad)
        )
        assert await code_of(unstage) == grpc.StatusCode.INVALID_ARGUMENT, bad
        # Stats: a path that cannot hold one of our volumes holds none (csi-sanity asks this).
        stats = node.stub.NodeGetVolumeStats(
            csi_pb2.NodeGetVolumeStatsRequest(volume_id="vol-a", volume_path=bad)
        )
        assert await code_of(stats) == grpc.StatusCode.NOT_FOUND, bad
    assert os.listdir(outside) == []
    assert [p for p in plane.mounts() if not p.startswith(str(kubelet))] == []
    await node.unstage(staging)
