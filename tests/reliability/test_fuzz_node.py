"""Fuzz the Node service's requests against the real node process, above all its paths.

Paths are drawn from traversals (``..``), symlinks planted inside the kubelet directory that
point out of it, absolute paths elsewhere, relative, empty, huge and unicode strings, mixed with
capabilities and contexts both valid and not. Whatever arrives: no crash, never INTERNAL or
UNKNOWN, no mount anywhere outside the kubelet directory, and nothing created, changed or
removed outside it. The run prints how many requests it tried.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oxide_csi.csi_v1 import csi_pb2, csi_pb2_grpc
from oxide_csi.node.mountinfo import read_mountinfo
from tests.node.plane import Plane
from tests.plugin_process import PluginProcess
from tests.reliability.report import record

SERIAL = "csi-9a8b7c6d5e4f3a2b"
EXAMPLES = int(os.environ.get("OXIDE_CSI_FUZZ_EXAMPLES", "60"))
FORBIDDEN = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}
TRIED: Counter[str] = Counter()


class Rig:
    def __init__(self, base: Path) -> None:
        self.plane = Plane(base / "p")
        self.outside = base / "outside"
        self.outside.mkdir()
        (self.outside / "precious").write_text("do not touch")
        kubelet = self.plane.kubelet_dir
        (kubelet / "escape").symlink_to(self.outside)  # a link planted inside, pointing out
        (kubelet / "pods").mkdir(exist_ok=True)
        (kubelet / "pods" / "up").symlink_to("../../outside")
        self.stub: csi_pb2_grpc.NodeStub | None = None

    def outside_state(self) -> list[tuple[str, int]]:
        return sorted((str(p), p.stat().st_mtime_ns) for p in self.outside.rglob("*"))

    def stray_mounts(self) -> list[str]:
        inside = str(self.plane.kubelet_dir.resolve()) + "/"
        base = str(self.plane.base.resolve().parent)
        return [
            m.mount_point
            for m in read_mountinfo()
            if m.mount_point.startswith(base) and not m.mount_point.startswith(inside)
        ]


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    base = Path(tmp_path_factory.mktemp("nodefuzz"))
    made = Rig(base)
    made.plane.attach(SERIAL)
    sock_dir = Path("/tmp") / f"ocsi-nfuzz-{os.getpid()}"
    sock_dir.mkdir(exist_ok=True)
    endpoint = f"unix://{sock_dir / 'node.sock'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OXIDE_", "CSI_"))}
    env["OXIDE_CSI_LOOP_DEVICE_DIR"] = str(made.plane.device_dir)
    args = [
        "serve",
        "--mode",
        "node",
        "--node-id",
        "instance-0",
        "--endpoint",
        endpoint,
        "--kubelet-dir",
        str(made.plane.kubelet_dir),
    ]
    proc = PluginProcess(args, env, base)
    before = made.outside_state()
    try:
        channel = proc.wait_ready(endpoint)
        made.stub = csi_pb2_grpc.NodeStub(channel)
        yield made
        channel.close()
        assert proc.proc.poll() is None, "the node plugin died during fuzzing"
        assert made.stray_mounts() == []
        assert made.outside_state() == before
        assert (made.outside / "precious").read_text() == "do not touch"
    finally:
        proc.stop()  # in-flight calls (a mount, an mkfs) end before the cleanup
        made.plane.cleanup()
        record(f"node fuzz: tried {sum(TRIED.values())} requests: {dict(TRIED)}")


def _paths(kubelet: str) -> st.SearchStrategy[str]:
    fixed = [
        "",
        ".",
        "..",
        "relative/path",
        "/",
        "/etc",
        "/tmp/x",
        f"{kubelet}",
        f"{kubelet}/",
        f"{kubelet}/../outside",
        f"{kubelet}/escape",
        f"{kubelet}/escape/new",
        f"{kubelet}/pods/up/precious",
        f"{kubelet}/pods/p1/volumes/../../../outside",
        f"{kubelet}//pods/./p1",
        f"{kubelet}/plugins/csi/pv/v/globalmount",
        f"{kubelet}/pods/p1/volumes/csi/v",
        f"{kubelet}/" + "a" * 5000,
        f"{kubelet}/ünï/€",
    ]
    tail = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=30)
    return st.one_of(
        st.sampled_from(fixed),
        tail.map(lambda t: f"{kubelet}/pods/{t}"),
        st.builds(lambda a, b: f"{a}/{b}", st.sampled_from(fixed), tail),
    )


@st.composite
def capability(draw: st.DrawFn) -> csi_pb2.VolumeCapability | None:
    kind = draw(st.sampled_from(["mount", "block", "none", "absent"]))
    if kind == "absent":
        return None
    cap = csi_pb2.VolumeCapability()
    if kind == "mount":
        cap.mount.fs_type = draw(st.sampled_from(["", "ext4", "xfs", "btrfs", "../x"]))
        cap.mount.mount_flags.extend(
            draw(
                st.lists(
                    st.sampled_from(
                        ["ro", "noatime", "remount", "bind", "x-mount.mkdir", "loop", "a,b", ""]
                    ),
                    max_size=2,
                )
            )
        )
    elif kind == "block":
        cap.block.SetInParent()
    cap.access_mode.mode = draw(st.integers(0, 12))  # type: ignore[assignment]
    return cap


CONTEXT = st.fixed_dictionaries(
    {},
    optional={
        "oxide.computer/serial": st.sampled_from([SERIAL, "csi-0000000000000000", "", "../x"]),
        "oxide.computer/source": st.sampled_from(["blank", "snapshot", "volume", ""]),
        "oxide.computer/fs-type": st.sampled_from(["ext4", "xfs", "zfs"]),
    },
)


@settings(
    max_examples=EXAMPLES * 5,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_no_request_escapes_the_kubelet_dir(rig: Rig, data: st.DataObject) -> None:
    assert rig.stub is not None
    paths = _paths(str(rig.plane.kubelet_dir))
    vol = data.draw(st.sampled_from(["vol-a", "", "x" * 300, "ü"]))
    method = data.draw(
        st.sampled_from(
            [
                "NodeStageVolume",
                "NodePublishVolume",
                "NodeUnpublishVolume",
                "NodeUnstageVolume",
                "NodeGetVolumeStats",
                "NodeExpandVolume",
            ]
        )
    )
    request: Any
    if method == "NodeStageVolume":
        request = csi_pb2.NodeStageVolumeRequest(
            volume_id=vol,
            staging_target_path=data.draw(paths),
            volume_capability=data.draw(capability()),
            publish_context=data.draw(CONTEXT),
            volume_context=data.draw(CONTEXT),
        )
    elif method == "NodePublishVolume":
        request = csi_pb2.NodePublishVolumeRequest(
            volume_id=vol,
            staging_target_path=data.draw(paths),
            target_path=data.draw(paths),
            volume_capability=data.draw(capability()),
            readonly=data.draw(st.booleans()),
            publish_context=data.draw(CONTEXT),
            volume_context=data.draw(CONTEXT),
        )
    elif method == "NodeUnpublishVolume":
        request = csi_pb2.NodeUnpublishVolumeRequest(volume_id=vol, target_path=data.draw(paths))
    elif method == "NodeUnstageVolume":
        request = csi_pb2.NodeUnstageVolumeRequest(
            volume_id=vol, staging_target_path=data.draw(paths)
        )
    elif method == "NodeGetVolumeStats":
        request = csi_pb2.NodeGetVolumeStatsRequest(volume_id=vol, volume_path=data.draw(paths))
    else:
        request = csi_pb2.NodeExpandVolumeRequest(volume_id=vol, volume_path=data.draw(paths))
    TRIED[method] += 1
    try:
        getattr(rig.stub, method)(request, timeout=60)
    except grpc.RpcError as exc:
        code = exc.code()
        assert code not in FORBIDDEN, f"{method} -> {code.name}: {exc.details()}"
    assert rig.stray_mounts() == []
