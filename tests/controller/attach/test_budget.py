"""The cycle budget against the simulator: how many instances are down at once is counted by
the rack (``most_down_at_once`` in ``/sim/stats``, or an instance hook in the simulator), never
by the plugin's own bookkeeping."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from oxide_csi import errors
from oxide_csi.controller.attach import AttachCoordinator, HotAttach, StartPolicy
from oxide_csi.controller.attach.budget import NO_ROLES, CycleBudget, NodeRoles
from oxide_csi.controller.attach.records import AttachRecord, Phase
from tests.controller.attach.conftest import Rack, rack_of, soon, until
from tests.controller.attach.memory_store import MemoryAttachRecordStore
from tests.controller.held_stops import hold_starts, hold_stops

INSTANCES = [f"instance-{i}" for i in range(4)]


def coordinator(
    rack: Rack, budget: CycleBudget, made: list[AttachCoordinator], **kwargs: Any
) -> AttachCoordinator:
    kwargs.setdefault("record", MemoryAttachRecordStore())
    kwargs.setdefault("op_timeout", 30.0)
    coord = AttachCoordinator(
        rack.client,
        batch_window=0.05,
        start_policy=StartPolicy(initial=0.02, maximum=0.1),
        budget=budget,
        **kwargs,
    )
    made.append(coord)
    return coord


@pytest.fixture
async def made() -> AsyncIterator[list[AttachCoordinator]]:
    coordinators: list[AttachCoordinator] = []
    yield coordinators
    for coord in coordinators:
        await coord.close()


async def most_down(rack: Rack) -> int:
    return int((await rack.stats())["most_down_at_once"])


async def test_four_instances_owing_work_never_more_than_two_down(
    monkeypatch: pytest.MonkeyPatch, made: list[AttachCoordinator]
) -> None:
    async with rack_of(instances=4, stop_seconds=0.1, start_seconds=0.1) as rack:
        release = hold_stops(rack.client, monkeypatch)
        budget = CycleBudget(2)
        coord = coordinator(rack, budget, made)
        disks = await rack.disks("budget", 6)
        ids = {name: await rack.instance_id(name) for name in INSTANCES}
        tasks = [
            asyncio.create_task(coord.attach(d.id, name, deadline=soon()))
            for d, name in zip(disks, INSTANCES, strict=False)
        ]
        # Two workers hold their slots (their stops are held), two wait for one.
        await until(lambda: len(budget.down()) == 2 and budget.waiting() == 2, "2 down, 2 wait")
        # Work arriving for a waiting instance joins the one cycle it waits for.
        waiting = sorted(name for name, iid in ids.items() if iid not in budget.down())
        tasks += [
            asyncio.create_task(coord.attach(d.id, name, deadline=soon()))
            for d, name in zip(disks[4:], waiting, strict=True)
        ]
        await until(lambda: coord.in_flight() == 6, "six queued attaches")
        release.set()
        await asyncio.gather(*tasks)

        assert await most_down(rack) == 2
        stats = (await rack.stats())["instances"]
        assert [stats[name]["stops"] for name in INSTANCES] == [1, 1, 1, 1]  # one cycle each
        assert all(stats[name]["state"] == "running" for name in INSTANCES)
        assert budget.down() == {} and budget.waiting() == 0


async def test_without_a_limit_all_four_are_down_at_once(
    monkeypatch: pytest.MonkeyPatch, made: list[AttachCoordinator]
) -> None:
    """The control: the same load without a limit takes all four down, so the rack's count in
    the test above is what the budget holds, not what the load happens to do."""
    async with rack_of(instances=4, stop_seconds=0.3, start_seconds=0.1) as rack:
        release = hold_stops(rack.client, monkeypatch)
        coord = coordinator(rack, CycleBudget(None), made)
        disks = await rack.disks("free", 4)
        tasks = [
            asyncio.create_task(coord.attach(d.id, name, deadline=soon()))
            for d, name in zip(disks, INSTANCES, strict=True)
        ]
        await until(lambda: coord.in_flight() == 4, "four queued attaches")
        release.set()
        await asyncio.gather(*tasks)
        assert await most_down(rack) == 4


class Downs:
    """An instance hook in the simulator: which instances are off, and the most control-plane
    ones (and of all) that were off at once."""

    def __init__(self, control_plane: set[str]) -> None:
        self.control_plane = control_plane
        self.off: set[str] = set()
        self.most_cp = 0
        self.most = 0

    def after_stopped(self, instance: dict[str, Any], disks: list[dict[str, Any]]) -> None:
        self.off.add(instance["name"])
        self.most = max(self.most, len(self.off))
        self.most_cp = max(self.most_cp, len(self.off & self.control_plane))

    def before_running(self, instance: dict[str, Any], disks: list[dict[str, Any]]) -> None:
        self.off.discard(instance["name"])


async def run_four(
    rack: Rack,
    roles: NodeRoles,
    made: list[AttachCoordinator],
    monkeypatch: pytest.MonkeyPatch,
    ready: Callable[[CycleBudget], bool],
) -> CycleBudget:
    """Four attaches, one per instance, under a budget of 4 with ``roles``; the stops are
    released once ``ready`` says the budget looks as the test expects."""
    release = hold_stops(rack.client, monkeypatch)
    budget = CycleBudget(4, roles=roles)
    coord = coordinator(rack, budget, made)
    disks = await rack.disks("roles", 4)
    tasks = [
        asyncio.create_task(coord.attach(d.id, name, deadline=soon()))
        for d, name in zip(disks, INSTANCES, strict=True)
    ]
    await until(lambda: ready(budget), "the budget to settle")
    release.set()
    await asyncio.gather(*tasks)
    return budget


async def test_never_two_control_plane_nodes_down_at_once(
    monkeypatch: pytest.MonkeyPatch, made: list[AttachCoordinator], tmp_path: Any
) -> None:
    """Nodes labelled as kubeadm ("" value), k3s ("true") and older clusters (``master``) do:
    with room for four, one control-plane node at a time goes down, beside the worker."""
    from kube_sim import KubeSim
    from oxide_csi.kube.nodes import NodeGate
    from tests.kube.harness import ATTACHABLE, NAMESPACE
    from tests.kube.inproc import client_for, controller_settings

    roles = {
        "instance-0": {"node-role.kubernetes.io/control-plane": ""},
        "instance-1": {"node-role.kubernetes.io/control-plane": "true"},
        "instance-2": {"node-role.kubernetes.io/master": "true"},
        "instance-3": {"node-role.kubernetes.io/worker": "true"},
    }
    downs = Downs(control_plane={"instance-0", "instance-1", "instance-2"})
    with KubeSim(tokens=("kube-admin",), namespaces=(NAMESPACE,)) as kube:
        async with rack_of(instances=4, stop_seconds=0.1, start_seconds=0.1) as rack:
            rack.sim.add_instance_hook(downs)
            for name, labels in roles.items():
                iid = await rack.instance_id(name)
                kube.add_node(name, provider_id=f"oxide://{iid}", labels={**ATTACHABLE, **labels})
            async with client_for(controller_settings(kube, tmp_path, "a")) as client:
                budget = await run_four(
                    rack,
                    NodeGate(client),
                    made,
                    monkeypatch,
                    lambda b: sorted(b.down().values()) == [False, True] and b.waiting() == 2,
                )
            assert await most_down(rack) == 2
    assert downs.most_cp == 1 and downs.most == 2
    assert budget.down() == {}


async def test_the_file_backend_knows_no_control_plane(
    monkeypatch: pytest.MonkeyPatch, made: list[AttachCoordinator]
) -> None:
    async with rack_of(instances=4, stop_seconds=0.1, start_seconds=0.1) as rack:
        await run_four(rack, NO_ROLES, made, monkeypatch, lambda b: len(b.down()) == 4)
        assert await most_down(rack) == 4


class Unknowable:
    async def control_plane(self, instance_id: str, instance_name: str) -> bool:
        raise errors.Unavailable("cannot read the cluster's Nodes")


async def test_a_node_whose_role_cannot_be_read_counts_as_control_plane(
    monkeypatch: pytest.MonkeyPatch, made: list[AttachCoordinator]
) -> None:
    async with rack_of(instances=4, stop_seconds=0.1, start_seconds=0.1) as rack:
        downs = Downs(control_plane=set(INSTANCES))
        rack.sim.add_instance_hook(downs)
        await run_four(rack, Unknowable(), made, monkeypatch, lambda b: b.waiting() == 3)
    assert downs.most == 1


async def test_recovery_of_stopped_instances_never_waits_but_counts(
    monkeypatch: pytest.MonkeyPatch, made: list[AttachCoordinator]
) -> None:
    """Two instances a previous controller left stopped (their records owe a start) fill a
    budget of 2: their recovery goes ahead at once, and a third instance is not stopped until
    one of them runs again."""
    async with rack_of(instances=3, stop_seconds=0.1, start_seconds=0.1) as rack:
        store = MemoryAttachRecordStore()
        for name in INSTANCES[:2]:
            await rack.stop(name)
            iid = await rack.instance_id(name)
            await store.save(AttachRecord(iid, name, was_running=True, phase=Phase.STARTING))
        starts = hold_starts(rack.client, monkeypatch)
        budget = CycleBudget(2)
        coord = coordinator(rack, budget, made, record=store)
        recovery = asyncio.create_task(coord.recover())
        await until(lambda: len(budget.down()) == 2, "both stopped instances counted")
        (disk,) = await rack.disks("third", 1)
        third = asyncio.create_task(coord.attach(disk.id, "instance-2", deadline=soon()))
        await until(lambda: budget.waiting() == 1, "the third instance waiting for a slot")
        assert await rack.run_state("instance-2") == "running"
        starts.set()
        await recovery
        await third
        assert await most_down(rack) == 2
        assert [await rack.run_state(n) for n in INSTANCES[:3]] == ["running"] * 3


async def test_recovery_goes_ahead_while_the_budget_is_full(
    monkeypatch: pytest.MonkeyPatch, made: list[AttachCoordinator]
) -> None:
    async with rack_of(instances=2, stop_seconds=0.1, start_seconds=0.1) as rack:
        store = MemoryAttachRecordStore()
        await rack.stop("instance-0")
        iid = await rack.instance_id("instance-0")
        await store.save(AttachRecord(iid, "instance-0", was_running=True, phase=Phase.STARTING))
        stops = hold_stops(rack.client, monkeypatch)
        budget = CycleBudget(1)
        coord = coordinator(rack, budget, made, record=store)
        (disk,) = await rack.disks("full", 1)
        held = asyncio.create_task(coord.attach(disk.id, "instance-1", deadline=soon()))
        await until(lambda: len(budget.down()) == 1, "instance-1 holding the only slot")
        await coord.recover()  # would hang here if recovery waited for the slot
        assert await rack.run_state("instance-0") == "running"
        stops.set()
        await held


async def test_a_failed_cycle_keeps_its_slot_until_recovery_starts_the_instance(
    made: list[AttachCoordinator],
) -> None:
    async with rack_of(instances=2, stop_seconds=0.05, start_seconds=0.05) as rack:
        budget = CycleBudget(1)
        coord = coordinator(rack, budget, made, op_timeout=1.0)
        first, second = await rack.disks("slot", 2)
        await rack.fail_starts("instance-0", 1000)
        with pytest.raises(errors.Unavailable):
            await coord.attach(first.id, "instance-0", deadline=soon())
        assert await rack.run_state("instance-0") == "stopped"
        assert list(budget.down()) == [await rack.instance_id("instance-0")]

        waiting = asyncio.create_task(coord.attach(second.id, "instance-1", deadline=soon()))
        await until(lambda: budget.waiting() == 1, "instance-1 waiting for the slot")
        await rack.fail_starts("instance-0", 0)
        await coord.recover()
        await waiting
        assert await most_down(rack) == 1


async def test_hot_attach_needs_no_slot(
    monkeypatch: pytest.MonkeyPatch, made: list[AttachCoordinator]
) -> None:
    async with rack_of(instances=2, hotplug=True) as rack:
        stops = hold_stops(rack.client, monkeypatch)
        budget = CycleBudget(1)
        await budget.take("someone-else", "instance-9", soon())  # the only slot is taken
        coord = coordinator(rack, budget, made, hot=HotAttach(rack.client))
        (disk,) = await rack.disks("hot", 1)
        result = await coord.attach(disk.id, "instance-1", deadline=soon())
        assert result.instance_name == "instance-1"
        assert await rack.cycles("instance-1") == (0, 0)
        stops.set()


async def test_no_slot_before_the_deadline_fails_the_batch(made: list[AttachCoordinator]) -> None:
    async with rack_of(instances=1) as rack:
        budget = CycleBudget(1)
        await budget.take("someone-else", "instance-9", soon())
        coord = coordinator(rack, budget, made, op_timeout=0.3)
        (disk,) = await rack.disks("late", 1)
        with pytest.raises(errors.Unavailable, match="its turn"):
            await coord.attach(disk.id, "instance-0", deadline=soon())
        assert await rack.cycles("instance-0") == (0, 0)
        assert budget.waiting() == 0


async def test_the_metrics_read_the_budget() -> None:
    from oxide_csi.metrics import PluginMetrics

    metrics = PluginMetrics("controller", process=False)
    budget = CycleBudget(1)
    metrics.track_budget(lambda: len(budget.down()), budget.waiting)
    await budget.take("a", "instance-a", soon())
    second = asyncio.create_task(budget.take("b", "instance-b", soon()))
    await until(lambda: budget.waiting() == 1, "the second waiting")

    def value(name: str) -> float | None:
        return metrics.registry.get_sample_value(f"oxide_csi_attach_{name}")

    assert (value("instances_down"), value("instances_waiting_for_a_turn")) == (1.0, 1.0)
    budget.give_back("a")
    await second
    assert (value("instances_down"), value("instances_waiting_for_a_turn")) == (1.0, 0.0)


async def test_an_instance_stopped_by_someone_else_during_the_wait_is_not_started(
    made: list[AttachCoordinator],
) -> None:
    """After its wait the worker looks at the instance again: one an operator stopped meanwhile
    gets its disk while stopped, and stays stopped (nobody owes it a start)."""
    async with rack_of(instances=1) as rack:
        budget = CycleBudget(1)
        await budget.take("someone-else", "instance-9", soon())
        coord = coordinator(rack, budget, made)
        (disk,) = await rack.disks("meanwhile", 1)
        attach = asyncio.create_task(coord.attach(disk.id, "instance-0", deadline=soon()))
        await until(lambda: budget.waiting() == 1, "the attach waiting for its turn")
        await rack.stop("instance-0")
        budget.give_back("someone-else")
        await attach
        assert await rack.run_state("instance-0") == "stopped"
        assert await rack.disk_on(disk.id) == await rack.instance_id("instance-0")
        assert await rack.cycles("instance-0") == (1, 0)  # the operator's stop only
