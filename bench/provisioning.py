"""Provisioning path: from CreateVolume to a writable NodePublishVolume target, step by step.

How long a pod waits for a new volume, and how much of that is the plugin's own doing. Each
volume goes through what a cluster does, in order: CreateVolume, ControllerPublishVolume (the
instance is stopped, the disk attached, the instance started), NodeStageVolume (format and
mount), NodePublishVolume (bind mount into the pod), then a write that is fsynced and read back.

Baseline: the simulated rack's own configured latency -- what the steps cost even with a plugin
that did no work at all: the instance's stop plus start time (the simulator creates disks and
attaches at once). Overhead = total minus that, the plugin's share: its attach batch window
(0.5 s in dev mode, overlapping the stop), the polling that notices the instance stopped and
running again, the API calls, mkfs and mount. Target: overhead under 5 % of the total.

The volumes run one after another through one plugin: the first one meets a controller that has
not yet seen this rack stop and start, so its polling runs on the plain schedule (a look every
5 % of the time waited); from the second on, the client knows when a stop or start is due and
looks densely around then (``oxide/polling.py``). Every row is shown; the verdict is the median.

Runs ``oxide-csi dev`` (root): disks are real loop devices, so staging really formats.
Run: ``.venv/bin/python -m bench.provisioning`` (about a minute).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

from bench import devrig
from bench.common import machine_line, print_table, scratch_dir, write_results

GIB = 1 << 30


def provision(dev: devrig.DevProcess, name: str, size: int) -> tuple[dict[str, float], Any]:
    clock = [time.monotonic()]

    def lap() -> None:
        clock.append(time.monotonic())

    volume = devrig.create(dev.controller, name, size)
    lap()
    context = devrig.controller_publish(dev.controller, volume, dev.node_id)
    lap()
    staging, target = devrig.kubelet_paths(dev.kubelet, name)  # kubelet's part, not timed
    clock[-1] = time.monotonic()
    vol = devrig.Volume(volume, staging, target, context)
    devrig.stage(dev.node, vol)
    lap()
    devrig.publish(dev.node, vol)
    lap()
    devrig.write_probe(target)
    lap()
    steps = ["create_s", "controller_publish_s", "node_stage_s", "node_publish_s", "write_s"]
    # create_s starts at clock[0]; the kubelet's mkdir between publish and stage is excluded.
    figures = {step: clock[n + 1] - clock[n] for n, step in enumerate(steps)}
    return figures, vol


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--volumes", type=int, default=3)
    parser.add_argument("--size-gib", type=int, default=10)
    parser.add_argument("--stop-seconds", type=float, default=2.0)
    parser.add_argument("--start-seconds", type=float, default=3.0)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("provisioning runs oxide-csi dev, which needs root")
    latency = args.stop_seconds + args.start_seconds
    settings = {
        "volumes": args.volumes,
        "size_gib": args.size_gib,
        "fs_type": "ext4",
        "stop_seconds": args.stop_seconds,
        "start_seconds": args.start_seconds,
        "simulated_latency_s": latency,
        "attach_batch_window_s": 0.5,
        "process": "oxide-csi dev (simulator, device plane, controller and node in one process)",
    }
    print(f"provisioning on {machine_line()}; settings {settings}", flush=True)
    rows = []
    with scratch_dir("bench-prov-") as work:
        dev = devrig.DevProcess(work, args.stop_seconds, args.start_seconds)
        try:
            for i in range(args.volumes):
                figures, vol = provision(dev, f"pvc-prov-{i}", args.size_gib * GIB)
                total = sum(figures.values())
                row: dict[str, Any] = {"volume": i + 1}
                row.update({k: round(v, 3) for k, v in figures.items()})
                row["total_s"] = round(total, 3)
                row["overhead_s"] = round(total - latency, 3)
                row["overhead_pct"] = round(100 * (total - latency) / total, 1)
                rows.append(row)
                print(f"  {row}", flush=True)
                devrig.teardown(dev.controller, dev.node, vol, dev.node_id)
        finally:
            dev.close()
    median: dict[str, Any] = {"volume": "median"}
    for key in rows[0]:
        if key != "volume":
            median[key] = round(statistics.median(float(r[key]) for r in rows), 3)
    rows.append(median)
    print_table(
        f"Provisioning path, {args.size_gib} GiB ext4 volume (simulated stop "
        f"{args.stop_seconds:g} s + start {args.start_seconds:g} s = {latency:g} s)",
        [
            *("volume", "create s", "ctrl publish s", "node stage s", "node publish s"),
            *("write s", "total s", "overhead s", "overhead %"),
        ],
        [list(r.values()) for r in rows],
    )
    verdict = "met" if median["overhead_pct"] < 5 else "MISSED"
    print(f"target overhead < 5 %: {verdict} (median {median['overhead_pct']} %)")
    print(f"results: {write_results('provisioning', settings, rows)}")


if __name__ == "__main__":
    main()
