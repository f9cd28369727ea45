"""CreateVolume throughput: 100 concurrent calls against the plugin and the simulator.

What a cluster does when a big StatefulSet or a namespace of PVCs appears: the provisioner
sends many CreateVolume calls at once, and repeats any that time out. The figures: completed
calls per second, p50 and p99 latency, and proof that concurrency made no duplicates -- the
simulator ends up with exactly one disk per distinct name, and replaying all 100 calls at once
(as a provisioner retrying after a timeout would) returns the same volume ids and creates
nothing. Baseline: the same number of calls issued one after another. Three rounds, each with
names of its own; the table shows each figure's median, the JSON every round.

The plugin (``oxide-csi serve --mode controller``) and the simulator (``python -m oxide_sim``,
disks ready at once) each run in their own process; this process only sends calls.

Run: ``.venv/bin/python -m bench.throughput`` (well under a minute).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import Any

import grpc

from bench.common import (
    Plugin,
    Simulator,
    controller_env,
    machine_line,
    percentile,
    print_table,
    scratch_dir,
    write_results,
)
from oxide_csi.csi_v1 import csi_pb2, csi_pb2_grpc

GIB = 1 << 30
DISK_NAME_KEY = "oxide.computer/disk-name"


def request(name: str) -> csi_pb2.CreateVolumeRequest:
    mode = csi_pb2.VolumeCapability.AccessMode.SINGLE_NODE_WRITER
    cap = csi_pb2.VolumeCapability(
        mount=csi_pb2.VolumeCapability.MountVolume(fs_type="ext4"),
        access_mode=csi_pb2.VolumeCapability.AccessMode(mode=mode),
    )
    return csi_pb2.CreateVolumeRequest(
        name=name,
        capacity_range=csi_pb2.CapacityRange(required_bytes=GIB),
        volume_capabilities=[cap],
    )


async def timed_create(
    stub: csi_pb2_grpc.ControllerAsyncStub, name: str
) -> tuple[float, csi_pb2.Volume]:
    started = time.monotonic()
    response: csi_pb2.CreateVolumeResponse = await stub.CreateVolume(request(name), timeout=120)
    return time.monotonic() - started, response.volume


async def concurrent(endpoint: str, names: list[str]) -> tuple[float, list[Any]]:
    async with grpc.aio.insecure_channel(endpoint) as channel:
        stub = csi_pb2_grpc.ControllerStub(channel)
        await channel.channel_ready()
        started = time.monotonic()
        results = await asyncio.gather(*(timed_create(stub, n) for n in names))
        return time.monotonic() - started, list(results)


async def sequential(endpoint: str, names: list[str]) -> tuple[float, list[Any]]:
    async with grpc.aio.insecure_channel(endpoint) as channel:
        stub = csi_pb2_grpc.ControllerStub(channel)
        await channel.channel_ready()
        started = time.monotonic()
        results = [await timed_create(stub, n) for n in names]
        return time.monotonic() - started, results


def oxide_requests(plugin: Plugin) -> float:
    samples = plugin.scrape().items()
    return sum(v for (name, _), v in samples if name == "oxide_csi_oxide_requests_total")


def summarize(label: str, wall: float, results: list[Any], oxide_calls: float) -> dict[str, Any]:
    latencies = [seconds for seconds, _ in results]
    return {
        "run": label,
        "calls": len(results),
        "wall_s": round(wall, 3),
        "completed_per_s": round(len(results) / wall, 1),
        "p50_ms": round(percentile(latencies, 50) * 1000, 1),
        "p99_ms": round(percentile(latencies, 99) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
        "distinct_volume_ids": len({vol.volume_id for _, vol in results}),
        "oxide_requests_per_call": round(oxide_calls / len(results), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    n = args.calls
    settings: dict[str, Any] = {
        "calls": n,
        "rounds": args.rounds,
        "disk_size_gib": 1,
        "simulator_disk_create_seconds": 0,
    }
    print(f"throughput on {machine_line()}; settings {settings}", flush=True)
    with scratch_dir("bench-tput-") as work:
        sim = Simulator(work, instances=1)
        try:
            plugin = Plugin(
                work,
                ["serve", "--mode", "controller", "--state-dir", str(work / "state")],
                controller_env(sim),
            )
            try:
                rows, every, proof = run(sim, plugin, n, args.rounds)
            finally:
                plugin.close()
        finally:
            sim.close()

    headers = ["run", "calls", "wall s", "completed/s", "p50 ms", "p99 ms", "max ms"]
    headers += ["distinct ids", "Oxide requests/call"]
    print_table(
        f"CreateVolume throughput ({n} calls, simulator creates disks at once; "
        f"median of {args.rounds} rounds)",
        headers,
        [list(r.values()) for r in rows],
    )
    print(
        f"no duplicates: {proof['managed_disks']} managed disks for {proof['distinct_names']} "
        f"distinct names; replays returned the same ids: {proof['replay_same_ids']}; "
        f"replays created disks: {proof['replay_created']}"
    )
    path = write_results("throughput", {**settings, "proof": proof, "rounds_detail": every}, rows)
    print(f"results: {path}")


def run_round(
    sim: Simulator, plugin: Plugin, n: int, tag: str
) -> tuple[list[dict[str, Any]], dict[str, Any], set[str]]:
    """One round: n concurrent calls, the same n again (replay), n other calls in sequence."""
    names = [f"pvc-tput-{tag}-{i:03d}" for i in range(n)]
    seq_names = [f"pvc-seq-{tag}-{i:03d}" for i in range(n)]
    rows = []
    before = oxide_requests(plugin)
    wall, first = asyncio.run(concurrent(plugin.endpoint, names))
    rows.append(summarize("concurrent", wall, first, oxide_requests(plugin) - before))
    disks_after_first = len(sim.disks())

    before = oxide_requests(plugin)
    wall, replay = asyncio.run(concurrent(plugin.endpoint, names))
    rows.append(summarize("concurrent replay", wall, replay, oxide_requests(plugin) - before))
    replay_created = len(sim.disks()) - disks_after_first

    before = oxide_requests(plugin)
    wall, seq = asyncio.run(sequential(plugin.endpoint, seq_names))
    rows.append(summarize("sequential (baseline)", wall, seq, oxide_requests(plugin) - before))
    checks = {
        "replay_same_ids": [v.volume_id for _, v in first] == [v.volume_id for _, v in replay],
        "replay_created": replay_created,
    }
    wanted = {vol.volume_context[DISK_NAME_KEY] for _, vol in first + seq}
    return rows, checks, wanted


def run(
    sim: Simulator, plugin: Plugin, n: int, rounds: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Any]]:
    """Rounds of :func:`run_round`; the table shows each figure's median over the rounds."""
    # One call first, not measured: connections, the project lookup, lazy imports.
    asyncio.run(sequential(plugin.endpoint, ["pvc-warmup"]))
    every: list[dict[str, Any]] = []
    checks = []
    wanted: set[str] = set()
    for r in range(rounds):
        rows, check, names = run_round(sim, plugin, n, f"r{r}")
        every += [{"round": r + 1, **row} for row in rows]
        checks.append(check)
        wanted |= names
        print(f"  round {r + 1}: " + "; ".join(
            f"{row['run']} {row['completed_per_s']}/s" for row in rows
        ), flush=True)  # fmt: skip
    medians = []
    for label in ("concurrent", "concurrent replay", "sequential (baseline)"):
        mine = [row for row in every if row["run"] == label]
        median: dict[str, Any] = {"run": label, "calls": n}
        for key in ("wall_s", "completed_per_s", "p50_ms", "p99_ms", "max_ms"):
            median[key] = statistics.median(row[key] for row in mine)
        median["distinct_volume_ids"] = min(row["distinct_volume_ids"] for row in mine)
        median["oxide_requests_per_call"] = statistics.median(
            row["oxide_requests_per_call"] for row in mine
        )
        medians.append(median)
    managed = [d for d in sim.disks() if d["name"].startswith("csi-")]
    proof = {
        "managed_disks": len(managed),
        "distinct_managed_names": len({d["name"] for d in managed}),
        "distinct_names": 2 * n * rounds + 1,
        "every_volume_is_a_listed_disk": wanted <= {d["name"] for d in managed},
        "replay_same_ids": all(c["replay_same_ids"] for c in checks),
        "replay_created": sum(c["replay_created"] for c in checks),
    }
    if (
        proof["managed_disks"] != proof["distinct_names"]
        or proof["distinct_managed_names"] != proof["distinct_names"]
        or not proof["replay_same_ids"]
        or proof["replay_created"]
        or not proof["every_volume_is_a_listed_disk"]
    ):
        raise SystemExit(f"DUPLICATES OR LOST VOLUMES: {proof}")
    return medians, every, proof


if __name__ == "__main__":
    main()
