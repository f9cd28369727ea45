"""Fuzz every Controller RPC's request fields against the real controller process.

Hypothesis draws requests with missing, empty, huge, unicode and path-like fields, absurd
capacities and every combination of capabilities. Whatever it sends, the plugin must not crash
and must not answer INTERNAL or UNKNOWN (or UNAVAILABLE: the simulator injects no faults here,
so that would be a malformed request reaching Oxide). The run prints how many inputs it tried.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from oxide_csi.csi_v1 import csi_pb2, csi_pb2_grpc
from oxide_sim import SimConfig, SimulatorServer
from tests.plugin_process import PluginProcess
from tests.reliability.report import record

TOKEN = "oxide-token-fuzz0123456789abcdef012345"
EXAMPLES = int(os.environ.get("OXIDE_CSI_FUZZ_EXAMPLES", "60"))
FORBIDDEN = {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.UNAVAILABLE}
TRIED: Counter[str] = Counter()

SPECIAL = st.sampled_from(
    ["", " ", "..", "../../etc/passwd", "/", "a" * 5000, "ünïcødé-€-𝄞", "pvc-1", "UPPER", "-"]
)
TEXT = st.one_of(SPECIAL, st.text(st.characters(codec="utf-8"), max_size=80))
IDS = st.one_of(TEXT, st.uuids().map(str))
INT64 = st.one_of(st.integers(-(2**63), 2**63 - 1), st.sampled_from([0, 1, 1 << 30, 1023 << 30]))
MODES = st.one_of(
    st.sampled_from(list(csi_pb2.VolumeCapability.AccessMode.Mode.values())),
    st.integers(0, 1000),
)


@st.composite
def capabilities(draw: st.DrawFn) -> csi_pb2.VolumeCapability:
    cap = csi_pb2.VolumeCapability()
    kind = draw(st.sampled_from(["mount", "block", "none"]))
    if kind == "mount":
        cap.mount.fs_type = draw(st.one_of(st.sampled_from(["ext4", "xfs", "btrfs", ""]), TEXT))
        cap.mount.mount_flags.extend(draw(st.lists(TEXT, max_size=3)))
    elif kind == "block":
        cap.block.SetInParent()
    if draw(st.booleans()):
        cap.access_mode.mode = draw(MODES)  # type: ignore[assignment]
    return cap


PARAMS = st.dictionaries(
    st.one_of(st.sampled_from(["fsType", "blockSize", "csi.storage.k8s.io/pvc/name"]), TEXT),
    TEXT,
    max_size=3,
)
CAPS = st.lists(capabilities(), max_size=3)


@st.composite
def create_volume(draw: st.DrawFn) -> csi_pb2.CreateVolumeRequest:
    req = csi_pb2.CreateVolumeRequest(
        name=draw(TEXT),
        volume_capabilities=draw(CAPS),
        parameters=draw(PARAMS),
        secrets=draw(st.dictionaries(TEXT, TEXT, max_size=2)),
    )
    if draw(st.booleans()):
        req.capacity_range.required_bytes = draw(INT64)
        req.capacity_range.limit_bytes = draw(INT64)
    source = draw(st.sampled_from(["none", "snapshot", "volume", "empty"]))
    if source == "snapshot":
        req.volume_content_source.snapshot.snapshot_id = draw(IDS)
    elif source == "volume":
        req.volume_content_source.volume.volume_id = draw(IDS)
    elif source == "empty":
        req.volume_content_source.SetInParent()
    return req


def _requests() -> st.SearchStrategy[tuple[str, Any]]:
    cap_or_none = st.one_of(st.none(), capabilities())
    return st.one_of(
        create_volume().map(lambda r: ("CreateVolume", r)),
        IDS.map(lambda v: ("DeleteVolume", csi_pb2.DeleteVolumeRequest(volume_id=v))),
        st.builds(
            lambda v, n, c, ro: (
                "ControllerPublishVolume",
                csi_pb2.ControllerPublishVolumeRequest(
                    volume_id=v, node_id=n, volume_capability=c, readonly=ro
                ),
            ),
            IDS,
            IDS,
            cap_or_none,
            st.booleans(),
        ),
        st.builds(
            lambda v, n: (
                "ControllerUnpublishVolume",
                csi_pb2.ControllerUnpublishVolumeRequest(volume_id=v, node_id=n),
            ),
            IDS,
            IDS,
        ),
        st.builds(
            lambda v, c, p: (
                "ValidateVolumeCapabilities",
                csi_pb2.ValidateVolumeCapabilitiesRequest(
                    volume_id=v, volume_capabilities=c, parameters=p
                ),
            ),
            IDS,
            CAPS,
            PARAMS,
        ),
        st.builds(
            lambda m, t: (
                "ListVolumes",
                csi_pb2.ListVolumesRequest(max_entries=m, starting_token=t),
            ),
            st.integers(-(2**31), 2**31 - 1),
            TEXT,
        ),
        IDS.map(lambda v: ("ControllerGetVolume", csi_pb2.ControllerGetVolumeRequest(volume_id=v))),
        st.builds(
            lambda n, v, p: (
                "CreateSnapshot",
                csi_pb2.CreateSnapshotRequest(name=n, source_volume_id=v, parameters=p),
            ),
            TEXT,
            IDS,
            PARAMS,
        ),
        IDS.map(lambda s: ("DeleteSnapshot", csi_pb2.DeleteSnapshotRequest(snapshot_id=s))),
        st.builds(
            lambda m, t, s, v: (
                "ListSnapshots",
                csi_pb2.ListSnapshotsRequest(
                    max_entries=m, starting_token=t, snapshot_id=s, source_volume_id=v
                ),
            ),
            st.integers(-(2**31), 2**31 - 1),
            TEXT,
            IDS,
            IDS,
        ),
    )


@pytest.fixture(scope="module")
def controller(tmp_path_factory: pytest.TempPathFactory) -> Iterator[csi_pb2_grpc.ControllerStub]:
    tmp = Path(tmp_path_factory.mktemp("fuzz"))
    sock_dir = Path("/tmp") / f"ocsi-fuzz-{os.getpid()}"
    sock_dir.mkdir(exist_ok=True)
    endpoint = f"unix://{sock_dir / 'csi.sock'}"
    cfg = SimConfig(
        token=TOKEN, instances=2, stop_seconds=0.02, start_seconds=0.02, state_dir=tmp / "sim"
    )
    with SimulatorServer(cfg) as sim:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OXIDE_", "CSI_"))}
        env.update(OXIDE_HOST=sim.url, OXIDE_TOKEN=TOKEN, OXIDE_PROJECT="default")
        env["OXIDE_CSI_CONTROLLER_INSTANCE_ID"] = str(uuid.uuid4())  # guard: not a sim instance
        args = [
            "serve",
            "--mode",
            "controller",
            "--endpoint",
            endpoint,
            "--state-dir",
            str(tmp / "state"),
            "--attach-batch-window",
            "0.02",
        ]
        proc = PluginProcess(args, env, tmp)
        try:
            channel = proc.wait_ready(endpoint)
            yield csi_pb2_grpc.ControllerStub(channel)
            channel.close()
            assert proc.proc.poll() is None, "the plugin died during fuzzing"
            output = proc.output()
            assert TOKEN not in output
        finally:
            proc.kill()
            record(f"controller fuzz: tried {sum(TRIED.values())} requests: {dict(TRIED)}")


@settings(
    max_examples=EXAMPLES * 10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(call=_requests())
def test_no_malformed_request_breaks_the_controller(
    controller: csi_pb2_grpc.ControllerStub, call: tuple[str, Any]
) -> None:
    method, request = call
    TRIED[method] += 1
    try:
        getattr(controller, method)(request, timeout=30)
    except grpc.RpcError as exc:
        code = exc.code()
        assert code not in FORBIDDEN, f"{method} -> {code.name}: {exc.details()}"
