"""The workload benchmark's harness: its cost arithmetic, and one small scenario for real.

Why a run here: the benchmark drives a real ``oxide-csi dev`` through many RPCs; a change to
dev mode, the CSI servicers or the simulator's stats could silently break it between two
recorded runs. The move is the smallest scenario that exercises every part of it (a pod with
node calls on this machine, a Controller-only pod on another instance, per-phase stats), and
its figures are known: two power cycles, one per instance, under either detach policy.
"""

from __future__ import annotations

from typing import Any

from bench import workloads
from bench.workload_rig import PhaseCost, difference


def _stats(**instances: dict[str, Any]) -> dict[str, Any]:
    return {"instances": instances}


def test_a_simulator_without_the_new_counters_counts_every_stop_as_hard() -> None:
    before = _stats(a={"stops": 1, "down_seconds": 0.5}, b={"stops": 0})
    after = _stats(a={"stops": 3, "down_seconds": 2.0}, b={"stops": 0})
    cost = difference(before, after)
    assert (cost.hard_stops, cost.guest_power_offs, cost.cycles) == (2, 0, 2)
    assert cost.down_s == {"a": 1.5, "b": 0.0}


def test_hard_stops_and_guest_power_offs_are_counted_apart() -> None:
    before = _stats(a={"stops": 4, "hard_stops": 1, "guest_power_offs": 2, "down_seconds": 1.0})
    after = _stats(a={"stops": 9, "hard_stops": 2, "guest_power_offs": 5, "down_seconds": 3.25})
    cost = difference(before, after)
    assert (cost.hard_stops, cost.guest_power_offs, cost.cycles) == (1, 3, 4)
    total = PhaseCost()
    total.add(cost)
    total.add(cost)
    assert total.to_json() == {
        "cycles": 8,
        "hard_stops": 2,
        "guest_power_offs": 6,
        "down_s": {"a": 4.5},
    }


def test_the_move_costs_two_cycles_one_per_instance() -> None:
    policies: list[str | None] = (
        list(workloads.POLICIES) if workloads.supports_detach_policy() else [None]
    )
    for policy in policies:
        row = workloads.run_one(workloads.move, "cold-plug", policy, (0.2, 0.2))
        groups = row["groups"]
        leaves, arrives = groups["leaves instance-0"], groups["arrives on instance-1"]
        assert leaves["cycles"] + arrives["cycles"] == 2, (policy, groups)
        # under the deferred policy the old node goes down only when the volume is needed
        # elsewhere; under the immediate one, as soon as the pod has gone
        assert leaves["cycles"] == (0 if policy == "deferred" else 1), (policy, groups)
        assert arrives["down_s"]["instance-1"] > 0
        assert arrives["down_s"]["instance-2"] == leaves["down_s"]["instance-2"] == 0
        assert row["phases"][0]["group"] == "setup"


def test_the_table_puts_the_policies_side_by_side() -> None:
    cost = {"cycles": 2, "hard_stops": 1, "guest_power_offs": 1, "down_s": {"instance-1": 1.26}}
    row = {"rack": "cold-plug", "scenario": "s", "immediate": {"groups": {"g": cost}}}
    assert workloads.table_rows([row]) == [
        ["s (cold-plug)", "g", *["n/a"] * 4, 2, 1, 1, "0.0 / 1.3 / 0.0"]
    ]


def _run(**cycles: int) -> dict[str, Any]:
    return {"groups": {g: {"cycles": n} for g, n in cycles.items()}}


def test_the_promises_are_read_from_the_deferred_runs_on_a_cold_plug_rack() -> None:
    move = {"leaves instance-0": 0, "arrives on instance-1": 2}
    rows = [
        {
            "rack": "cold-plug",
            "scenario": workloads.ROLLING,
            "deferred": _run(**{"re-publishes": 0}),
            "immediate": _run(**{"re-publishes": 3}),
        },
        {"rack": "hot-plug", "scenario": workloads.SCALE_DOWN, "deferred": _run(deletions=0)},
        {"rack": "cold-plug", "scenario": workloads.SCALE_DOWN, "deferred": _run(deletions=1)},
        {"rack": "cold-plug", "scenario": workloads.MOVE, "immediate": _run(**move)},
    ]
    measured = [(c["measured"], c["expected"]) for c in workloads.promises(rows)]
    assert measured == [(0, 0), (1, 0), (None, 2)]
    rows[-1]["deferred"] = _run(**move)
    assert workloads.promises(rows)[-1]["measured"] == 2
