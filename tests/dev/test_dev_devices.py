"""A real ``oxide-csi dev`` process: its disks become loop devices, follow the instance's runs,
are cleaned up on exit, come back on restart, and a killed run's leftovers are reaped."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from tests.dev.devproc import create_and_publish, dev_args, node_id_from_output, unpublish
from tests.dev.helpers import (
    ROOT_MARKS,
    bind_loop,
    loops_in,
    mount_points_under,
    release_dev_state,
)

pytestmark = ROOT_MARKS

BOOT = "instance-0-boot"


def _mkfs_and_mount(device_name: str, point: Path) -> None:
    subprocess.run(
        ["mkfs.ext4", "-q", "-F", f"/dev/{device_name}"], check=True, capture_output=True
    )
    point.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", f"/dev/{device_name}", str(point)], check=True)


def test_disks_follow_the_instance_and_a_restart_resumes(
    plugin_factory, plugin_env, short_tmp: Path
) -> None:
    endpoint = f"unix://{short_tmp / 'csi.sock'}"
    state = short_tmp / "state"
    args = dev_args(endpoint, state)
    try:
        plugin = plugin_factory(args, plugin_env, short_tmp)
        channel = plugin.wait_ready(endpoint)
        node_id = node_id_from_output(plugin)
        assert {k: len(v) for k, v in loops_in(state / "devices").items()} == {BOOT: 1}

        volume, context = create_and_publish(channel, "pvc-follow", node_id)
        serial = context["oxide.computer/serial"]
        assert serial == volume.volume_context["oxide.computer/serial"]
        loops = loops_in(state / "devices")
        assert sorted(loops) == sorted([BOOT, serial])  # attached while stopped, there on start

        # leave a mount under the kubelet dir, as a node with a staged volume would
        _mkfs_and_mount(loops[serial][0], state / "kubelet" / "staged")
        (state / "kubelet" / "staged" / "data").write_text("survives")
        channel.close()
        plugin.terminate()
        assert plugin.wait() == 0, plugin.output()
        assert loops_in(state / "devices") == {}
        assert mount_points_under(state) == []
        assert (state / "disks" / f"{volume.volume_id}.img").exists()  # data is never deleted

        # restarted: the instance is still running with both disks, so both are back at once
        again = plugin_factory(args, plugin_env, short_tmp)
        channel = again.wait_ready(endpoint)
        loops = loops_in(state / "devices")
        assert {k: len(v) for k, v in loops.items()} == {BOOT: 1, serial: 1}
        point = state / "kubelet" / "check"
        point.mkdir()
        subprocess.run(["mount", "-o", "ro", f"/dev/{loops[serial][0]}", str(point)], check=True)
        assert (point / "data").read_text() == "survives"
        subprocess.run(["umount", str(point)], check=True)

        unpublish(channel, volume.volume_id, node_id)
        # released (deferred detach, dev's default): attached, idle, until the instance's next
        # cycle takes the device away (tests/dev/test_dev_deferred.py)
        assert sorted(loops_in(state / "devices")) == sorted([BOOT, serial])
        channel.close()
        again.terminate()
        assert again.wait() == 0, again.output()
        assert loops_in(state / "devices") == {}
    finally:
        release_dev_state(state)


def test_leftovers_of_a_killed_run_are_reaped_at_start(
    plugin_factory, plugin_env, short_tmp: Path
) -> None:
    endpoint = f"unix://{short_tmp / 'csi.sock'}"
    state = short_tmp / "state"
    args = dev_args(endpoint, state)
    try:
        plugin = plugin_factory(args, plugin_env, short_tmp)
        channel = plugin.wait_ready(endpoint)
        node_id = node_id_from_output(plugin)
        volume, context = create_and_publish(channel, "pvc-crash", node_id)
        serial = context["oxide.computer/serial"]
        old = loops_in(state / "devices")
        _mkfs_and_mount(old[serial][0], state / "kubelet" / "staged")
        # and a device of ours no disk stands for any more
        ghost = state / "devices" / "ghost-serial"
        with open(ghost, "wb") as fh:
            fh.truncate(16 << 20)
        bind_loop(ghost)
        channel.close()
        plugin.proc.send_signal(signal.SIGKILL)
        plugin.wait()
        assert sorted(loops_in(state / "devices")) == sorted([BOOT, serial, "ghost-serial"])
        assert mount_points_under(state / "kubelet")  # the crash left its mount

        again = plugin_factory(args, plugin_env, short_tmp)
        channel = again.wait_ready(endpoint)
        loops = loops_in(state / "devices")
        # one fresh device per attached disk; the mount and the ghost are gone
        assert {k: len(v) for k, v in loops.items()} == {BOOT: 1, serial: 1}
        assert mount_points_under(state) == []
        assert not ghost.exists()
        for names in loops.values():
            backing = Path(f"/sys/block/{names[0]}/loop/backing_file").read_text()
            assert "(deleted)" not in backing
        assert volume.volume_id  # the disk is still attached to the instance
        channel.close()
        again.terminate()
        assert again.wait() == 0, again.output()
        assert loops_in(state / "devices") == {}
    finally:
        release_dev_state(state)
