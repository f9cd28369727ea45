"""``--hotplug``: attach and detach accepted while the instance runs, the guest told through the
hooks; without it a running instance is refused exactly as Nexus refuses it."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest

from oxide_sim.cli import _parser, config_from_args
from tests.sim.conftest import SimFactory
from tests.sim.helpers import P, assert_error, client, create_disk, disk, instance

ATTACH = "/v1/instances/{}/disks/attach"
DETACH = "/v1/instances/{}/disks/detach"


class Guest:
    """An instance hook recording what the guest saw, with an event per call."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []
        self.changed = threading.Event()

    def before_running(self, instance: dict[str, Any], disks: list[dict[str, Any]]) -> None:
        pass

    def after_stopped(self, instance: dict[str, Any], disks: list[dict[str, Any]]) -> None:
        pass

    def disk_hotplugged(self, instance: dict[str, Any], disk: dict[str, Any]) -> None:
        self.seen.append(("plugged", instance["name"], disk["name"]))
        self.changed.set()

    def disk_unplugged(self, instance: dict[str, Any], disk: dict[str, Any]) -> None:
        self.seen.append(("unplugged", instance["name"], disk["name"]))
        self.changed.set()

    def wait(self) -> None:
        assert self.changed.wait(10), "the guest was never told"
        self.changed.clear()


def _stats(c: httpx.Client, name: str = "instance-0") -> dict[str, Any]:
    entry: dict[str, Any] = c.get("/sim/stats").json()["instances"][name]
    return entry


def test_running_instance_is_refused_without_hotplug(api: httpx.Client) -> None:
    d = create_disk(api, "vol")
    assert instance(api)["run_state"] == "running"
    r = api.post(ATTACH.format("instance-0"), params=P, json={"disk": "vol"})
    assert_error(r, 400, "InvalidRequest", "instance is not fully stopped")
    assert disk(api, d["id"])["state"] == {"state": "detached"}
    assert _stats(api)["hot_attaches"] == 0


def test_hotplug_attaches_and_detaches_while_running(make_sim: SimFactory) -> None:
    sim = make_sim(hotplug=True)
    guest = Guest()
    sim.add_instance_hook(guest)
    with client(sim) as c:
        inst = instance(c)
        d = create_disk(c, "hot-vol")
        r = c.post(ATTACH.format("instance-0"), params=P, json={"disk": "hot-vol"})
        assert r.status_code == 202, r.text
        assert r.json()["state"] == {"state": "attached", "instance": inst["id"]}
        guest.wait()
        assert guest.seen == [("plugged", "instance-0", "hot-vol")]
        assert instance(c)["run_state"] == "running"
        # the boot disk still cannot go, hot or not
        r = c.post(DETACH.format("instance-0"), params=P, json={"disk": "instance-0-boot"})
        assert_error(r, 409, "Conflict", "boot disk cannot be detached")

        r = c.post(DETACH.format("instance-0"), params=P, json={"disk": d["id"]})
        assert r.status_code == 202, r.text
        guest.wait()
        assert guest.seen[-1] == ("unplugged", "instance-0", "hot-vol")
        stats = _stats(c)
        assert (stats["stops"], stats["hot_attaches"], stats["hot_detaches"]) == (0, 1, 1)


def test_hotplug_keeps_the_slot_limit(make_sim: SimFactory) -> None:
    sim = make_sim(hotplug=True, max_disks_per_instance=2)
    with client(sim) as c:
        create_disk(c, "one")
        create_disk(c, "two")
        ok = c.post(ATTACH.format("instance-0"), params=P, json={"disk": "one"})
        assert ok.status_code == 202, ok.text
        r = c.post(ATTACH.format("instance-0"), params=P, json={"disk": "two"})
        assert_error(r, 400, "InvalidRequest", "cannot attach more than 2 disks")


def test_a_silent_hot_attach_never_reaches_the_guest(make_sim: SimFactory) -> None:
    sim = make_sim(hotplug=True)
    guest = Guest()
    sim.add_instance_hook(guest)
    with client(sim) as c:
        r = c.post("/sim/instances/instance-0/hotplug-silent", json={"count": 1})
        assert r.status_code == 200, r.text
        create_disk(c, "lost")
        create_disk(c, "found")
        for name in ("lost", "found"):
            r = c.post(ATTACH.format("instance-0"), params=P, json={"disk": name})
            assert r.status_code == 202, r.text
        guest.wait()  # scheduled in order: had "lost" been shown, it would come first
        assert guest.seen == [("plugged", "instance-0", "found")]
        assert _stats(c)["hot_attaches"] == 2


@pytest.mark.parametrize("flag", [[], ["--hotplug"]])
def test_cli_flag(flag: list[str]) -> None:
    args = _parser().parse_args(["--token", "t", *flag])
    assert config_from_args(args, "t").hotplug is bool(flag)
