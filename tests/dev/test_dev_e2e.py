"""Issue 5's end-to-end check, through ``oxide-csi dev`` and nothing but CSI calls.

A client creates a volume, publishes it to the node the plugin reports, stages and publishes it
in the kubelet directory, writes a file, tears everything down and deletes the volume; nothing
stays mounted or attached. Between the two halves the volume is unstaged and staged again, and
the file must still be there: it really went to the disk, not to a directory.
"""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from oxide_csi.csi_v1 import csi_pb2, csi_pb2_grpc
from tests.dev.devproc import (
    create_and_publish,
    dev_args,
    publish,
    stage,
    unpublish_unstage,
)
from tests.dev.helpers import (
    ROOT_MARKS,
    loops_in,
    mount_points_under,
    release_dev_state,
)

pytestmark = ROOT_MARKS

BOOT = "instance-0-boot"


def test_full_volume_lifecycle_through_dev(plugin_factory, plugin_env, short_tmp: Path) -> None:
    endpoint = f"unix://{short_tmp / 'csi.sock'}"
    state = short_tmp / "state"
    kubelet = state / "kubelet"
    plugin = plugin_factory(dev_args(endpoint, state), plugin_env, short_tmp)
    try:
        channel = plugin.wait_ready(endpoint)
        controller = csi_pb2_grpc.ControllerStub(channel)
        node = csi_pb2_grpc.NodeStub(channel)

        node_id = node.NodeGetInfo(csi_pb2.NodeGetInfoRequest(), timeout=10).node_id
        volume, context = create_and_publish(channel, "pvc-e2e", node_id, fs_type="ext4", size=None)
        serial = context["oxide.computer/serial"]
        assert sorted(loops_in(state / "devices")) == sorted([BOOT, serial])

        # the kubelet creates the staging directory and the target's parent
        staging = kubelet / "plugins/kubernetes.io/csi/csi.oxide.computer/e2e/globalmount"
        pod = kubelet / "pods/0f0e2e00-0000-4000-8000-000000000001"
        target = pod / "volumes/kubernetes.io~csi/pvc-e2e/mount"
        staging.mkdir(parents=True)
        target.parent.mkdir(parents=True)

        stage(node, volume, context, staging)
        publish(node, volume, context, staging, target)
        (target / "hello.txt").write_text("written through oxide-csi dev\n")
        unpublish_unstage(node, volume.volume_id, staging, target)
        assert mount_points_under(kubelet) == []

        # staged again (the disk is never reformatted): the file is on the disk
        stage(node, volume, context, staging)
        publish(node, volume, context, staging, target)
        assert (target / "hello.txt").read_text() == "written through oxide-csi dev\n"
        unpublish_unstage(node, volume.volume_id, staging, target)

        controller.ControllerUnpublishVolume(
            csi_pb2.ControllerUnpublishVolumeRequest(volume_id=volume.volume_id, node_id=node_id),
            timeout=60,
        )
        controller.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=volume.volume_id), timeout=60)

        assert mount_points_under(state) == []
        # deferred detach (dev's default): the deleted volume's disk stays attached, idle,
        # until the instance's next cycle (tests/dev/test_dev_deferred.py), and is mounted nowhere
        assert sorted(loops_in(state / "devices")) == sorted([BOOT, serial])
        listed = controller.ListVolumes(csi_pb2.ListVolumesRequest(), timeout=30)
        assert volume.volume_id not in [e.volume.volume_id for e in listed.entries]
        with pytest.raises(grpc.RpcError) as gone:
            controller.ControllerGetVolume(
                csi_pb2.ControllerGetVolumeRequest(volume_id=volume.volume_id), timeout=30
            )
        assert gone.value.code() == grpc.StatusCode.NOT_FOUND
        channel.close()
        plugin.terminate()
        assert plugin.wait() == 0, plugin.output()
        assert loops_in(state / "devices") == {}
    finally:
        release_dev_state(state)
