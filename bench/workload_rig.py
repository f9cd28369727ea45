"""A small cluster for the workload benchmark: claims, pods on simulated instances, and what
each step of a workload cost the instances, measured per phase.

Why per phase: "no cycle at the time of the re-publishes" is a statement about a moment, not a
total. Every phase snapshots ``/sim/stats`` before and after its steps (with every instance
running again, so a cycle's down time never spills into the next phase) and keeps the
difference per instance: hard stops, guest power-offs, and seconds not running.

What the machine can play: ``oxide-csi dev`` makes only ``instance-0``'s disks loop devices on
this machine, so a pod there gets the whole kubelet sequence (ControllerPublish, NodeStage,
NodePublish, and the reverse), with data written before a step and checked after it. A pod on
another instance is driven through the Controller service only, which is all that decides
whether that instance is power-cycled.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench import devrig
from bench.common import project_disks
from oxide_csi.csi_v1 import csi_pb2

GIB = 1 << 30
#: The instance this machine plays (the only one whose disks become devices here).
HERE = "instance-0"


def instance_counters(stats: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per instance: hard stops, guest power-offs and seconds down, from ``/sim/stats``.

    A simulator without ``hard_stops``/``guest_power_offs`` stops only through the API, hard:
    its ``stops`` are hard stops and it knows no guest power-off.
    """
    counters = {}
    for name, inst in stats["instances"].items():
        counters[name] = {
            "hard_stops": float(inst.get("hard_stops", inst["stops"])),
            "guest_power_offs": float(inst.get("guest_power_offs", 0)),
            "down_s": float(inst.get("down_seconds", 0.0)),
        }
    return counters


@dataclass
class PhaseCost:
    """What one phase (or a group of phases) cost: counts summed, seconds down per instance."""

    hard_stops: int = 0
    guest_power_offs: int = 0
    down_s: dict[str, float] = field(default_factory=dict)

    @property
    def cycles(self) -> int:
        """A power cycle is a power-off, hard or orderly (every one is followed by a start)."""
        return self.hard_stops + self.guest_power_offs

    def add(self, other: PhaseCost) -> None:
        self.hard_stops += other.hard_stops
        self.guest_power_offs += other.guest_power_offs
        for name, seconds in other.down_s.items():
            self.down_s[name] = round(self.down_s.get(name, 0.0) + seconds, 3)

    def to_json(self) -> dict[str, Any]:
        return {
            "cycles": self.cycles,
            "hard_stops": self.hard_stops,
            "guest_power_offs": self.guest_power_offs,
            "down_s": dict(sorted(self.down_s.items())),
        }


def difference(before: dict[str, Any], after: dict[str, Any]) -> PhaseCost:
    old, new = instance_counters(before), instance_counters(after)
    cost = PhaseCost()
    for name, figures in new.items():
        was = old.get(name, {"hard_stops": 0.0, "guest_power_offs": 0.0, "down_s": 0.0})
        cost.hard_stops += int(figures["hard_stops"] - was["hard_stops"])
        cost.guest_power_offs += int(figures["guest_power_offs"] - was["guest_power_offs"])
        cost.down_s[name] = round(figures["down_s"] - was["down_s"], 3)
    return cost


@dataclass
class Pod:
    """A pod using one claim on one instance (``staged`` only on this machine's instance)."""

    claim: str
    instance: str
    vol: devrig.Volume | None = None


@dataclass
class PhaseRecord:
    """One phase of a scenario: its group (what the README sums), wall time and cost."""

    group: str
    name: str
    seconds: float
    cost: PhaseCost

    def to_json(self) -> dict[str, Any]:
        return {"group": self.group, "phase": self.name, "seconds": self.seconds}


class Cluster:
    """Claims and pods over one ``oxide-csi dev`` process; every step inside a phase."""

    def __init__(self, dev: devrig.DevProcess) -> None:
        self.dev = dev
        token = dev.oxide["OXIDE_TOKEN"]
        self.project = dev.oxide["OXIDE_PROJECT"]
        self.sim = httpx.Client(
            base_url=dev.oxide["OXIDE_HOST"],
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        self.ids = {name: i["id"] for name, i in self.stats()["instances"].items()}
        self.claims: dict[str, csi_pb2.Volume] = {}
        self.deleted: list[str] = []
        self.phases: list[PhaseRecord] = []
        self.checks = 0

    def close(self) -> None:
        self.sim.close()

    def stats(self) -> dict[str, Any]:
        body: dict[str, Any] = self.sim.get("/sim/stats").json()
        return body

    def settled_stats(self, timeout: float = 120.0) -> dict[str, Any]:
        """``/sim/stats`` once every instance runs again (a cycle the phase caused is over)."""
        deadline = time.monotonic() + timeout
        while True:
            stats = self.stats()
            if all(i["state"] == "running" for i in stats["instances"].values()):
                return stats
            if time.monotonic() > deadline:
                raise TimeoutError(f"instances not running after {timeout} s: {stats}")
            time.sleep(0.05)

    @contextmanager
    def phase(self, group: str, name: str) -> Iterator[None]:
        before = self.settled_stats()
        began = time.monotonic()
        yield
        after = self.settled_stats()
        seconds = round(time.monotonic() - began, 3)
        self.phases.append(PhaseRecord(group, name, seconds, difference(before, after)))

    # ----- claims ------------------------------------------------------------------------

    def create_claim(self, claim: str, size: int = GIB) -> None:
        self.claims[claim] = devrig.create(self.dev.controller, claim, size)

    def delete_claim(self, claim: str) -> None:
        volume = self.claims.pop(claim)
        devrig.delete(self.dev.controller, volume.volume_id)
        self.deleted.append(volume.volume_id)

    def deleted_disks_left(self, wait: float = 0.0) -> int:
        """Disks of deleted claims still in Oxide (waiting up to ``wait`` s for them to go)."""
        deadline = time.monotonic() + wait
        while True:
            ids = {d["id"] for d in project_disks(self.sim, self.project)}
            left = sum(1 for volume_id in self.deleted if volume_id in ids)
            if left == 0 or time.monotonic() >= deadline:
                return left
            time.sleep(0.1)

    # ----- pods --------------------------------------------------------------------------

    def start_pod(self, claim: str, instance: str) -> Pod:
        """Attach the claim to ``instance``; on this machine also stage and publish it."""
        volume = self.claims[claim]
        node_id = self.ids[instance]
        context = devrig.controller_publish(self.dev.controller, volume, node_id)
        pod = Pod(claim, instance)
        if instance == HERE:
            staging, target = devrig.kubelet_paths(self.dev.kubelet, claim)
            pod.vol = devrig.Volume(volume, staging, target, context)
            devrig.stage(self.dev.node, pod.vol)
            devrig.publish(self.dev.node, pod.vol)
        return pod

    def stop_pod(self, pod: Pod) -> None:
        """The pod is gone: unpublish and unstage on this machine, then ControllerUnpublish."""
        volume_id = self.claims[pod.claim].volume_id
        if pod.vol is not None:
            devrig.node_down(self.dev.node, pod.vol)
        devrig.controller_unpublish(self.dev.controller, volume_id, self.ids[pod.instance])

    def write(self, pod: Pod, name: str) -> None:
        """Write (and fsync) a file on the pod's volume: data the next steps must keep."""
        if pod.vol is None:
            return
        path = pod.vol.target / name
        with path.open("wb") as out:
            out.write(name.encode())
            out.flush()
            os.fsync(out.fileno())

    def check(self, pod: Pod, *names: str) -> None:
        """Every file written before is there with its content (the claim kept its data)."""
        if pod.vol is None:
            return
        for name in names:
            path = pod.vol.target / name
            if not path.is_file() or path.read_bytes() != name.encode():
                raise RuntimeError(f"{pod.claim}: {name} lost on {pod.instance}")
            self.checks += 1
