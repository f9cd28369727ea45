"""``oxide-csi dev --hotplug``: a hot-plug rack beside a kubelet directory of its own choosing.

Publishing a volume to the running instance stops nothing (``/sim/stats``), the disk's loop
device appears while the instance runs and NodeStage finds it (woken by the kernel's uevent);
unpublishing detaches it hot; after the claim is deleted and dev mode exits, nothing of dev
mode's is left, and everything the "kubelet" had is.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from oxide_csi.csi_v1 import csi_pb2, csi_pb2_grpc
from tests.dev.devproc import (
    create_and_publish,
    dev_args,
    node_id_from_output,
    publish,
    sim_url_from_output,
    stage,
    unpublish,
    unpublish_unstage,
)
from tests.dev.helpers import ROOT_MARKS, eventually, loops_in, release_dev_state
from tests.dev.kubelet_like import POD, KubeletLike

pytestmark = ROOT_MARKS

BOOT = "instance-0-boot"


def test_hotplug_attaches_without_a_stop(plugin_factory, plugin_env, short_tmp: Path) -> None:
    state = short_tmp / "state"
    kubelet = KubeletLike.make(short_tmp / "kubelet", short_tmp / "token-source")
    plugin_dir = kubelet.root / "plugins" / "csi.oxide.computer"  # as in the README's recipe
    endpoint = f"unix://{plugin_dir / 'csi.sock'}"
    # immediate: the unpublish is the hot detach this test is about (deferred, the disk would
    # stay attached until a publish elsewhere or a cycle, as tests/dev/test_dev_deferred.py shows)
    args = [*dev_args(endpoint, state), "--hotplug", "--kubelet-dir", str(kubelet.root)]
    args += ["--detach-policy", "immediate"]
    try:
        plugin = plugin_factory(args, plugin_env, short_tmp)
        channel = plugin.wait_ready(endpoint)
        node_id, url = node_id_from_output(plugin), sim_url_from_output(plugin)
        kubelet.assert_untouched()

        volume, context = create_and_publish(channel, "pvc-hot", node_id, fs_type="ext4")
        node = csi_pb2_grpc.NodeStub(channel)
        staging = kubelet.root / "plugins/kubernetes.io/csi/csi.oxide.computer/hot/globalmount"
        target = kubelet.root / POD / "volumes/kubernetes.io~csi/pvc-hot/mount"
        staging.mkdir(parents=True)
        target.parent.mkdir(parents=True)
        stage(node, volume, context, staging)  # the device may still be on its way: it waits
        publish(node, volume, context, staging, target)
        (target / "hello").write_text("hot\n")
        serial = context["oxide.computer/serial"]
        assert sorted(loops_in(state / "devices")) == sorted([BOOT, serial])

        unpublish_unstage(node, volume.volume_id, staging, target)
        unpublish(channel, volume.volume_id, node_id)
        # unplugged while running, shortly after the rack accepted the detach
        eventually(lambda: sorted(loops_in(state / "devices")) == [BOOT], "the unplug")
        controller = csi_pb2_grpc.ControllerStub(channel)
        controller.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=volume.volume_id), timeout=60)

        entry = httpx.get(f"{url}/sim/stats", timeout=10).json()["instances"]["instance-0"]
        assert (entry["stops"], entry["starts"]) == (0, 0)
        assert (entry["hot_attaches"], entry["hot_detaches"]) == (1, 1)
        channel.close()
        plugin.terminate()
        assert plugin.wait() == 0, plugin.output()
        assert loops_in(state / "devices") == {}
        assert kubelet.others() == set()  # nothing of dev mode's
        kubelet.assert_untouched()
        assert target.parent.is_dir()  # the kubelet's own directories are the kubelet's
        assert not plugin_dir.exists()  # the socket's directory was dev mode's
    finally:
        release_dev_state(state)
        release_dev_state(kubelet.root)
