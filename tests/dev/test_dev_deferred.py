"""Issue 19's first "Done when", through a real ``oxide-csi dev`` (deferred detach, its default).

Publish, stage, unstage, unpublish: no stop. Publish again to the same node: no stop, and it
stages with its data intact (never formatted again). DeleteVolume: no stop at that moment, and
the disk is gone from Oxide after the next cycle of that instance. Stops are counted by the
simulated rack (``/sim/stats``); the disk is read from the simulated Oxide's API.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grpc
import httpx
import pytest

from oxide_csi.csi_v1 import csi_pb2, csi_pb2_grpc
from oxide_csi.tools import oxide_env
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

pytestmark = ROOT_MARKS

BOOT = "instance-0-boot"


class Rack:
    """The simulated Oxide of one dev run, read with the token dev mode wrote to oxide.env."""

    def __init__(self, url: str, state: Path) -> None:
        values = oxide_env.read(state / oxide_env.FILE_NAME)
        self._http = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {values['OXIDE_TOKEN']}"}
        )
        self._project = values["OXIDE_PROJECT"]

    def stops(self) -> int:
        """instance-0's power-offs: hard stops and (dev's default) the guest's own."""
        entry = self._http.get("/sim/stats").json()["instances"]["instance-0"]
        return int(entry["stops"]) + int(entry["guest_power_offs"])

    def disk(self, disk_id: str) -> dict[str, object] | None:
        response = self._http.get(f"/v1/disks/{disk_id}")
        if response.status_code == 404:
            return None
        response.raise_for_status()
        found: dict[str, object] = response.json()
        return found

    def close(self) -> None:
        self._http.close()


def test_deferred_detach_and_delete_cost_no_stop(
    plugin_factory, plugin_env, short_tmp: Path
) -> None:
    endpoint = f"unix://{short_tmp / 'csi.sock'}"
    state = short_tmp / "state"
    kubelet = state / "kubelet"
    plugin = plugin_factory(dev_args(endpoint, state), plugin_env, short_tmp)
    try:
        channel = plugin.wait_ready(endpoint)
        rack = Rack(sim_url_from_output(plugin), state)
        controller = csi_pb2_grpc.ControllerStub(channel)
        node = csi_pb2_grpc.NodeStub(channel)
        node_id = node.NodeGetInfo(csi_pb2.NodeGetInfoRequest(), timeout=10).node_id
        staging = kubelet / "plugins/kubernetes.io/csi/csi.oxide.computer/def/globalmount"
        target = kubelet / "pods/0f0e2e00-0000-4000-8000-00000000de19/volumes/x/mount"
        staging.mkdir(parents=True)
        target.parent.mkdir(parents=True)

        volume, context = create_and_publish(channel, "pvc-deferred", node_id, fs_type="ext4")
        serial = context["oxide.computer/serial"]
        stops = rack.stops()
        stage(node, volume, context, staging)
        publish(node, volume, context, staging, target)
        (target / "data.txt").write_text("kept across a deferred detach\n")
        unpublish_unstage(node, volume.volume_id, staging, target)
        unpublish(channel, volume.volume_id, node_id)
        assert rack.stops() == stops  # released: no power cycle
        assert serial in loops_in(state / "devices")  # still attached, idle

        # published again to the same node: nothing stopped, and the data is there
        again = controller.ControllerPublishVolume(
            csi_pb2.ControllerPublishVolumeRequest(
                volume_id=volume.volume_id,
                node_id=node_id,
                volume_capability=csi_pb2.VolumeCapability(
                    mount=csi_pb2.VolumeCapability.MountVolume(fs_type="ext4"),
                    access_mode=csi_pb2.VolumeCapability.AccessMode(
                        mode=csi_pb2.VolumeCapability.AccessMode.SINGLE_NODE_WRITER
                    ),
                ),
                volume_context=volume.volume_context,
            ),
            timeout=60,
        )
        assert rack.stops() == stops
        stage(node, volume, dict(again.publish_context), staging)
        publish(node, volume, dict(again.publish_context), staging, target)
        assert (target / "data.txt").read_text() == "kept across a deferred detach\n"
        unpublish_unstage(node, volume.volume_id, staging, target)
        unpublish(channel, volume.volume_id, node_id)

        # DeleteVolume: no stop now; gone for CSI at once, from Oxide after the next cycle
        controller.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=volume.volume_id), timeout=60)
        assert rack.stops() == stops
        assert rack.disk(volume.volume_id) is not None
        with pytest.raises(grpc.RpcError) as gone:
            controller.ControllerGetVolume(
                csi_pb2.ControllerGetVolumeRequest(volume_id=volume.volume_id), timeout=30
            )
        assert gone.value.code() == grpc.StatusCode.NOT_FOUND

        create_and_publish(channel, "pvc-next-cycle", node_id)  # the instance's next cycle
        assert rack.stops() == stops + 1
        eventually(lambda: rack.disk(volume.volume_id) is None, "the owed deletion")
        assert serial not in loops_in(state / "devices")
        rack.close()
        channel.close()
        plugin.terminate()
        assert plugin.wait() == 0, plugin.output()
        assert loops_in(state / "devices") == {}
    finally:
        release_dev_state(state)


def test_release_instance_detaches_released_disks_and_does_owed_deletions(
    plugin_factory, plugin_env, short_tmp: Path
) -> None:
    endpoint = f"unix://{short_tmp / 'csi.sock'}"
    state = short_tmp / "state"
    plugin = plugin_factory(dev_args(endpoint, state), plugin_env, short_tmp)
    try:
        channel = plugin.wait_ready(endpoint)
        rack = Rack(sim_url_from_output(plugin), state)
        controller = csi_pb2_grpc.ControllerStub(channel)
        node_id = node_id_from_output(plugin)
        kept, kept_context = create_and_publish(channel, "pvc-window-kept", node_id)
        owed, _ = create_and_publish(channel, "pvc-window-owed", node_id)
        for volume in (kept, owed):
            unpublish(channel, volume.volume_id, node_id)
        controller.DeleteVolume(csi_pb2.DeleteVolumeRequest(volume_id=owed.volume_id), timeout=60)
        stops = rack.stops()

        command = [sys.executable, "-m", "oxide_csi", "release-instance", "instance-0"]
        command += ["--state-dir", str(state / "controller"), "--timeout", "120"]
        done = subprocess.run(
            command,
            env=plugin_env,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        assert kept_context["oxide.computer/disk-name"] in done.stdout, done.stdout
        assert rack.stops() == stops + 1  # one cycle for both
        assert rack.disk(owed.volume_id) is None
        kept_disk = rack.disk(kept.volume_id)
        assert kept_disk is not None and kept_disk["state"] == {"state": "detached"}
        assert sorted(loops_in(state / "devices")) == [BOOT]
        assert list((state / "controller" / "release-requests").iterdir()) == []
        rack.close()
        channel.close()
        plugin.terminate()
        assert plugin.wait() == 0, plugin.output()
    finally:
        release_dev_state(state)
