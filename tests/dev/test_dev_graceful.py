"""Graceful power-off in ``oxide-csi dev`` (issue 19, "Done when" #2), through real processes.

Dev mode's node plays instance-0's guest: asked by the controller, it flushes and unmounts what
it staged and tells the simulator the guest powered itself off, which the simulator counts apart
from the API's hard stops. With the node's handler (and heartbeat) switched off the controller
falls back to Oxide's hard stop: at once without a heartbeat, after the timeout with one. A
request replayed after the instance started again names a boot that is over, and is ignored.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

from oxide_csi.csi_v1 import csi_pb2_grpc
from oxide_csi.poweroff.messages import Heartbeat, PowerOffRequest
from oxide_csi.tools import oxide_env
from tests.dev.devproc import (
    create_and_publish,
    dev_args,
    node_id_from_output,
    publish,
    sim_url_from_output,
    stage,
    unpublish_unstage,
)
from tests.dev.helpers import ROOT_MARKS, release_dev_state
from tests.plugin_process import PluginProcess, wait_until

pytestmark = ROOT_MARKS


def _instance(url: str) -> dict[str, Any]:
    found: dict[str, Any] = httpx.get(f"{url}/sim/stats", timeout=10).json()["instances"][
        "instance-0"
    ]
    return found


def _counts(url: str) -> tuple[int, int]:
    entry = _instance(url)
    return entry["guest_power_offs"], entry["hard_stops"]


def _heartbeat(state: Path, instance_id: str) -> Heartbeat:
    path = state / "controller/poweroff/heartbeats" / f"{instance_id}.json"
    return Heartbeat.from_json(json.loads(path.read_text()))


def _start(
    plugin_factory: Any, plugin_env: dict[str, str], tmp: Path, *flags: str
) -> tuple[PluginProcess, Any, str, str, Path]:
    endpoint = f"unix://{tmp / 'csi.sock'}"
    state = tmp / "state"
    plugin = plugin_factory(dev_args(endpoint, state, *flags), plugin_env, tmp)
    channel = plugin.wait_ready(endpoint)
    return plugin, channel, node_id_from_output(plugin), sim_url_from_output(plugin), state


def test_a_cycle_is_a_guest_power_off(plugin_factory, plugin_env, short_tmp: Path) -> None:
    plugin, channel, node_id, url, state = _start(plugin_factory, plugin_env, short_tmp)
    try:
        first_boot = _heartbeat(state, node_id)
        volume, context = create_and_publish(channel, "pvc-gentle", node_id, fs_type="ext4")
        assert _counts(url) == (1, 0), plugin.output()
        assert _instance(url)["state"] == "running"
        assert "the guest powered itself off" in plugin.output()
        # the instance booted again: its guest has a new boot id, and its node says so
        wait_until(lambda: _heartbeat(state, node_id).boot_id != first_boot.boot_id, "new boot")

        node = csi_pb2_grpc.NodeStub(channel)
        kubelet = state / "kubelet"
        staging = kubelet / "plugins/kubernetes.io/csi/csi.oxide.computer/gentle/globalmount"
        target = kubelet / "pods/0f0e2e00-0000-4000-8000-0000000000aa/volumes/x/mount"
        staging.mkdir(parents=True)
        target.parent.mkdir(parents=True)
        stage(node, volume, context, staging)
        publish(node, volume, context, staging, target)
        (target / "kept").write_text("flushed by an orderly power-off\n")

        # the next cycle (another volume) powers the guest off again, while this one is staged:
        # the guest flushes and unmounts it; staged again, the file is there
        create_and_publish(channel, "pvc-gentle-2", node_id, fs_type="ext4")
        assert _counts(url) == (2, 0), plugin.output()
        assert not staging.is_mount() and not target.is_mount()
        unpublish_unstage(node, volume.volume_id, staging, target)
        stage(node, volume, context, staging)
        publish(node, volume, context, staging, target)
        assert (target / "kept").read_text() == "flushed by an orderly power-off\n"
        unpublish_unstage(node, volume.volume_id, staging, target)
        # the other simulated instances have guests of their own (devplane.guests)
        other = httpx.get(f"{url}/sim/stats", timeout=10).json()["instances"]["instance-1"]
        create_and_publish(channel, "pvc-elsewhere", other["id"])
        entry = httpx.get(f"{url}/sim/stats", timeout=10).json()["instances"]["instance-1"]
        assert (entry["guest_power_offs"], entry["hard_stops"], entry["state"]) == (
            1,
            0,
            "running",
        )
        # the requests were withdrawn after the cycles
        assert list((state / "controller/poweroff/requests").iterdir()) == []
        channel.close()
        plugin.terminate()
        assert plugin.wait() == 0, plugin.output()
    finally:
        release_dev_state(state)


def test_without_a_heartbeat_the_stop_is_hard_at_once(
    plugin_factory, plugin_env, short_tmp: Path
) -> None:
    flags = ("--no-guest-heartbeat", "--no-guest-handler", "--graceful-stop-timeout", "3600")
    plugin, channel, node_id, url, state = _start(plugin_factory, plugin_env, short_tmp, *flags)
    try:
        # create_and_publish gives the publish 60 s: far less than the graceful timeout
        create_and_publish(channel, "pvc-hard", node_id)
        assert _counts(url) == (0, 1), plugin.output()
        assert "no-heartbeat" in plugin.output()
        assert not (state / "controller/poweroff/requests").exists(), "nobody was asked"
        channel.close()
        plugin.terminate()
        assert plugin.wait() == 0, plugin.output()
    finally:
        release_dev_state(state)


def test_with_a_heartbeat_but_no_handler_the_stop_is_hard_after_the_timeout(
    plugin_factory, plugin_env, short_tmp: Path
) -> None:
    flags = ("--no-guest-handler", "--graceful-stop-timeout", "2")
    plugin, channel, node_id, url, state = _start(plugin_factory, plugin_env, short_tmp, *flags)
    try:
        wait_until(lambda: (state / "controller/poweroff/heartbeats").is_dir(), "a heartbeat")
        began = time.monotonic()
        create_and_publish(channel, "pvc-late", node_id)
        assert time.monotonic() - began >= 2, "the guest was given its timeout"
        assert _counts(url) == (0, 1), plugin.output()
        assert "reason=timeout" in plugin.output() or '"reason": "timeout"' in plugin.output()
        assert list((state / "controller/poweroff/requests").iterdir()) == [], "withdrawn"
        channel.close()
        plugin.terminate()
        assert plugin.wait() == 0, plugin.output()
    finally:
        release_dev_state(state)


def test_a_request_replayed_after_the_next_start_is_ignored(
    plugin_factory, plugin_env, short_tmp: Path
) -> None:
    plugin, channel, node_id, url, state = _start(plugin_factory, plugin_env, short_tmp)
    try:
        before = _heartbeat(state, node_id)
        run_before = _instance_run(state)
        create_and_publish(channel, "pvc-replay", node_id)
        assert _counts(url) == (1, 0), plugin.output()
        wait_until(lambda: _heartbeat(state, node_id).boot_id != before.boot_id, "new boot")

        # the request the controller sent for that cycle, as a dead controller would leave it
        requests = state / "controller/poweroff/requests"
        now = time.time()
        replayed = PowerOffRequest(
            instance_id=node_id,
            run=run_before,
            boot_id=before.boot_id,
            node_started=before.started,
            issued=now,
            expires=now + 600,
            issuer="a controller that died",
        )
        (requests / f"{node_id}.json").write_text(json.dumps(replayed.to_json()))
        wait_until(lambda: replayed.id in _ignored(plugin), "the node to see the replay")
        assert "another boot" in _ignored(plugin)[replayed.id]
        assert _counts(url) == (1, 0) and _instance(url)["state"] == "running"

        # the same request for the boot that runs now would be acted on: the check is real
        now_beat = _heartbeat(state, node_id)
        current = PowerOffRequest(
            instance_id=node_id,
            run=_instance_run(state),
            boot_id=now_beat.boot_id,
            node_started=now_beat.started,
            issued=time.time(),
            expires=time.time() + 600,
        )
        (requests / f"{node_id}.json").write_text(json.dumps(current.to_json()))
        wait_until(lambda: _instance(url)["state"] == "stopped", "the guest to power off")
        assert _counts(url) == (2, 0)
        channel.close()
        plugin.terminate()
        assert plugin.wait() == 0, plugin.output()
    finally:
        release_dev_state(state)


def _instance_run(state: Path) -> str:
    """instance-0's ``time_run_state_updated``, read as the controller reads it."""
    env = oxide_env.read(state / "oxide.env")
    view = httpx.get(
        f"{env['OXIDE_HOST']}/v1/instances/instance-0",
        params={"project": env["OXIDE_PROJECT"]},
        headers={"Authorization": f"Bearer {env['OXIDE_TOKEN']}"},
        timeout=10,
    ).json()
    return str(view["time_run_state_updated"])


def _ignored(plugin: PluginProcess) -> dict[str, str]:
    """Request id -> the log line that says the node ignored it."""
    found = {}
    for line in plugin.output().splitlines():
        if "power-off request ignored" in line:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            found[str(entry.get("request"))] = str(entry.get("reason"))
    return found
