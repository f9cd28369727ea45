"""Issue 21: ``oxide-csi dev`` unmounts only what its own devices back.

A kubelet-like directory holds mounts made by the test (a pod's emptyDir tmpfs, a bind-mounted
projected token) and files; they survive dev mode's start, a full attach cycle, a simulated stop
while a volume of dev mode's is staged, a SIGKILL and restart, and the exit -- while every mount
of dev mode's own devices (filesystem, bind mount of it, bind mount of a block device node) is
gone after the exit. A kubelet directory outside the state directory needs ``--hotplug``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import grpc
import httpx

from oxide_csi.csi_v1 import csi_pb2, csi_pb2_grpc
from tests.dev.devproc import (
    block_capability,
    create_and_publish,
    dev_args,
    node_id_from_output,
    publish,
    sim_url_from_output,
    stage,
)
from tests.dev.helpers import ROOT_MARKS, loops_in, release_dev_state
from tests.dev.kubelet_like import POD, KubeletLike

pytestmark = ROOT_MARKS

CSI = "plugins/kubernetes.io/csi/csi.oxide.computer"


def _stage_and_publish(
    channel: grpc.Channel,
    kubelet: Path,
    volume: csi_pb2.Volume,
    context: dict[str, str],
    *,
    block: bool = False,
) -> tuple[Path, Path]:
    """Stage and publish ``volume`` at the paths a kubelet uses; (staging, target)."""
    node = csi_pb2_grpc.NodeStub(channel)
    staging = kubelet / CSI / volume.volume_id / "globalmount"
    if block:
        target = kubelet / "plugins/kubernetes.io/csi/volumeDevices/publish" / volume.volume_id
    else:
        target = kubelet / POD / "volumes/kubernetes.io~csi" / volume.volume_id / "mount"
    staging.mkdir(parents=True, exist_ok=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    cap = block_capability() if block else None
    stage(node, volume, context, staging, cap)
    publish(node, volume, context, staging, target, cap)
    return staging, target


def _stops(url: str) -> int:
    """instance-0's power-offs: hard stops, and (dev's default) the guest's own."""
    entry = httpx.get(f"{url}/sim/stats", timeout=10).json()["instances"]["instance-0"]
    return int(entry["stops"]) + int(entry["guest_power_offs"])


def test_only_its_own_mounts_go(plugin_factory, plugin_env, short_tmp: Path) -> None:
    endpoint = f"unix://{short_tmp / 'csi.sock'}"
    state = short_tmp / "state"
    kubelet = KubeletLike.make(state / "kubelet", short_tmp / "token-source")
    args = dev_args(endpoint, state)
    try:
        plugin = plugin_factory(args, plugin_env, short_tmp)
        channel = plugin.wait_ready(endpoint)
        kubelet.assert_untouched()  # dev start
        node_id, url = node_id_from_output(plugin), sim_url_from_output(plugin)

        fs_vol, fs_ctx = create_and_publish(channel, "pvc-kubelet-fs", node_id)
        assert _stops(url) == 1
        kubelet.assert_untouched()  # a full attach cycle
        _stage_and_publish(channel, kubelet.root, fs_vol, fs_ctx)
        assert len(kubelet.others()) == 2  # dev mode's: the staged filesystem, its bind mount

        # a simulated stop (attaching the block volume) takes dev mode's mounts, and only those
        block_vol, block_ctx = create_and_publish(channel, "pvc-kubelet-block", node_id)
        assert _stops(url) == 2
        assert kubelet.others() == set()
        kubelet.assert_untouched()
        _stage_and_publish(channel, kubelet.root, fs_vol, fs_ctx)
        _stage_and_publish(channel, kubelet.root, block_vol, block_ctx, block=True)
        assert len(kubelet.others()) == 3  # + the block device node's bind mount

        channel.close()
        plugin.proc.send_signal(signal.SIGKILL)
        plugin.wait()
        kubelet.assert_untouched()  # a crash
        assert len(kubelet.others()) == 3  # and what the crash left

        again = plugin_factory(args, plugin_env, short_tmp)
        channel = again.wait_ready(endpoint)
        assert kubelet.others() == set()  # the restart reaped dev mode's leftovers...
        kubelet.assert_untouched()  # ...and nothing else
        _stage_and_publish(channel, kubelet.root, fs_vol, fs_ctx)
        _stage_and_publish(channel, kubelet.root, block_vol, block_ctx, block=True)
        assert len(kubelet.others()) == 3

        channel.close()
        again.terminate()
        assert again.wait() == 0, again.output()
        assert kubelet.others() == set()  # every mount of dev mode's devices is gone
        assert loops_in(state / "devices") == {}
        kubelet.assert_untouched()  # the exit
    finally:
        release_dev_state(state)


def test_a_kubelet_dir_outside_the_state_dir_needs_hotplug(
    plugin_env: dict[str, str], short_tmp: Path
) -> None:
    state, kubelet = short_tmp / "state", short_tmp / "kubelet"
    endpoint = f"unix://{short_tmp / 'csi.sock'}"
    argv = [*dev_args(endpoint, state), "--kubelet-dir", str(kubelet)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "oxide_csi", *argv],
        env=plugin_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # it serves: the refusal is missing
        proc.communicate(timeout=60)
        raise AssertionError("dev mode served a kubelet dir outside its state dir") from None
    finally:
        release_dev_state(state)
    assert proc.returncode == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert str(kubelet) in lines[0] and "--hotplug" in lines[0]
    assert not state.exists() and not kubelet.exists()
    assert not os.path.exists(short_tmp / "csi.sock")
