"""Workloads: what clusters do to volumes, and what each step costs the nodes in power cycles.

On Oxide every attach and detach needs the instance stopped, so the question a platform team
asks is not "how fast is an attach" but "how often does my node go down, how hard, and for how
long". This benchmark replays four everyday workloads through ``oxide-csi dev`` with three
simulated instances, on a cold-plug rack and on a hot-plug one (``dev --hotplug``, which also
turns the plugin's hot attach on), each under both detach policies side by side:

* a StatefulSet's rolling restart: three pods on three nodes, each deleted and back on its own
  node (NodeUnpublish, NodeUnstage, ControllerUnpublish; then ControllerPublish, NodeStage,
  NodePublish), in reverse ordinal order as the StatefulSet controller rolls them;
* a pod moved from ``instance-0`` to ``instance-1`` (a drain);
* a Job that runs ten times on ``instance-0`` with one claim;
* a StatefulSet scaled from three pods to one, the two claims deleted, then the next attach
  to each of those nodes (the cycle a deferred deletion waits for).

Every step happens inside a phase that snapshots ``/sim/stats`` before and after (every
instance running again), so the figures say when a cycle happened, not only how many: hard
stops (Oxide's stop: the virtual power cord), guest power-offs (the guest shut itself down in
order), and seconds each instance was not running. A pod on ``instance-0`` (this machine) gets
the node calls too, and its data is written before and checked after every step; pods on other
instances are driven through the Controller service, which is all that decides their cycles.

Each scenario and policy runs in a fresh ``oxide-csi dev`` (no state carried over). A plugin
without ``--detach-policy`` knows one behaviour, today's: every detach at once (``immediate``);
the deferred column then reads "n/a".

Needs root (loop devices, mkfs, mount). Run: ``.venv/bin/python -m bench.workloads``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from bench import devrig
from bench.common import clean_env, machine_line, print_table, scratch_dir, write_results
from bench.workload_rig import HERE, Cluster, PhaseCost, Pod

POLICIES = ("deferred", "immediate")
RACKS = {"cold-plug": (), "hot-plug": ("--hotplug",)}
INSTANCES = 3
JOB_RUNS = 10

Scenario = Callable[[Cluster], dict[str, Any]]


def stateful_set(cluster: Cluster, prefix: str) -> dict[int, Pod]:
    """Set-up: pod ``k`` of a StatefulSet on ``instance-k``, with its claim ``PREFIX-k``."""
    pods = {}
    with cluster.phase("setup", f"{INSTANCES} claims, one pod on each of {INSTANCES} nodes"):
        for k in range(INSTANCES):
            cluster.create_claim(f"{prefix}-{k}")
            pods[k] = cluster.start_pod(f"{prefix}-{k}", f"instance-{k}")
    return pods


def rolling_restart(cluster: Cluster) -> dict[str, Any]:
    """Three pods, one per node; each deleted and scheduled back on its own node."""
    pods = stateful_set(cluster, "web")
    for k in reversed(range(INSTANCES)):
        with cluster.phase("pods stop", f"web-{k} deleted"):
            cluster.write(pods[k], f"before-restart-{k}")
            cluster.stop_pod(pods[k])
        with cluster.phase("re-publishes", f"web-{k} back on instance-{k}"):
            pods[k] = cluster.start_pod(f"web-{k}", f"instance-{k}")
            cluster.check(pods[k], f"before-restart-{k}")
    return {}


def move(cluster: Cluster) -> dict[str, Any]:
    """A pod drained from this machine's instance to another node."""
    with cluster.phase("setup", f"a pod on {HERE}"):
        cluster.create_claim("db-0")
        pod = cluster.start_pod("db-0", HERE)
        cluster.write(pod, "before-move")
    with cluster.phase(f"leaves {HERE}", "pod deleted: unpublish, unstage, detach"):
        cluster.stop_pod(pod)
    with cluster.phase("arrives on instance-1", "ControllerPublish to instance-1"):
        cluster.start_pod("db-0", "instance-1")
    return {}


def job(cluster: Cluster) -> dict[str, Any]:
    """A Job whose pod runs ``JOB_RUNS`` times on one node with one claim, keeping its data."""
    with cluster.phase("setup", "one claim"):
        cluster.create_claim("job-data")
    written: list[str] = []
    for run in range(1, JOB_RUNS + 1):
        group = "run 1" if run == 1 else f"runs 2-{JOB_RUNS}"
        with cluster.phase(group, f"run {run}"):
            pod = cluster.start_pod("job-data", HERE)
            cluster.check(pod, *written)
            written.append(f"run-{run}")
            cluster.write(pod, written[-1])
            cluster.stop_pod(pod)
    return {}


def scale_down(cluster: Cluster) -> dict[str, Any]:
    """Three pods scaled to one; the two claims deleted; then the next attach to each node."""
    pods = stateful_set(cluster, "data")
    cluster.write(pods[0], "stays")
    with cluster.phase("scale-down", "pods of data-2 and data-1 deleted"):
        for k in (2, 1):
            cluster.stop_pod(pods[k])
    with cluster.phase("deletions", "claims data-2 and data-1 deleted"):
        for k in (2, 1):
            cluster.delete_claim(f"data-{k}")
    left_at_deletion = cluster.deleted_disks_left()
    with cluster.phase("next attach to those nodes", "a new claim on instance-1 and 2"):
        for k in (1, 2):
            cluster.create_claim(f"next-{k}")
            cluster.start_pod(f"next-{k}", f"instance-{k}")
    left_after = cluster.deleted_disks_left(wait=10.0)
    cluster.check(pods[0], "stays")
    return {"disks_left_after_deletions": left_at_deletion, "disks_left_at_end": left_after}


ROLLING = f"rolling restart, {INSTANCES} pods on {INSTANCES} nodes"
MOVE = f"pod moved {HERE} -> instance-1"
JOB = f"Job, {JOB_RUNS} runs on {HERE}, one claim"
SCALE_DOWN = f"scale-down {INSTANCES} -> 1, 2 claims deleted"
SCENARIOS: dict[str, Scenario] = {
    ROLLING: rolling_restart,
    MOVE: move,
    JOB: job,
    SCALE_DOWN: scale_down,
}
#: Issue 19's promises for a cold-plug rack under the deferred policy: (what, scenario, the
#: phase groups whose cycles are summed, the expected number of cycles).
PROMISES = (
    ("rolling restart: cycles at the re-publishes", ROLLING, ("re-publishes",), 0),
    ("scale-down: cycles at the deletions", SCALE_DOWN, ("deletions",), 0),
    ("move: cycles", MOVE, (f"leaves {HERE}", "arrives on instance-1"), 2),
)


def promises(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each promise with what the run measured (None: not run, e.g. no deferred policy)."""
    found = {(row["rack"], row["scenario"]): row for row in rows}
    checked = []
    for what, scenario, groups, expected in PROMISES:
        run = found.get(("cold-plug", scenario), {}).get("deferred")
        measured = None if run is None else sum(run["groups"][g]["cycles"] for g in groups)
        checked.append({"promise": what, "expected": expected, "measured": measured})
    return checked


def supports_detach_policy() -> bool:
    """Whether this plugin's ``dev`` takes ``--detach-policy`` (issue 19's deferred detach)."""
    out = subprocess.run(
        [sys.executable, "-m", "oxide_csi", "dev", "--help"],
        capture_output=True,
        text=True,
        env=clean_env(),
        check=True,
        timeout=60,
    ).stdout
    return "--detach-policy" in out


def run_one(
    scenario: Scenario, rack: str, policy: str | None, transitions: tuple[float, float]
) -> dict[str, Any]:
    """One scenario in a fresh ``oxide-csi dev``: its phases, group sums and extras."""
    extra = [*RACKS[rack], *(["--detach-policy", policy] if policy else [])]
    with scratch_dir("bench-wl-") as work:
        dev = devrig.DevProcess(work, *transitions, instances=INSTANCES, extra=extra)
        cluster = Cluster(dev)
        began = time.monotonic()
        try:
            extras = scenario(cluster)
        finally:
            cluster.close()
            dev.close()
    groups: dict[str, PhaseCost] = {}
    total = PhaseCost()
    phases = []
    for record in cluster.phases:
        groups.setdefault(record.group, PhaseCost()).add(record.cost)
        if record.group != "setup":
            total.add(record.cost)
        phases.append({**record.to_json(), **record.cost.to_json()})
    return {
        "seconds": round(time.monotonic() - began, 1),
        "data_checks": cluster.checks,
        **extras,
        "total_after_setup": total.to_json(),
        "groups": {name: cost.to_json() for name, cost in groups.items() if name != "setup"},
        "phases": phases,
    }


def run_all(args: argparse.Namespace, names: list[str]) -> list[dict[str, Any]]:
    """Every scenario on every rack under both policies (or today's only): one row each."""
    policies: list[str | None] = list(POLICIES) if supports_detach_policy() else [None]
    rows = []
    for rack in args.racks.split(","):
        for name in names:
            row: dict[str, Any] = {"rack": rack, "scenario": name}
            for policy in policies:
                label = policy or "immediate"
                transitions = (args.stop_seconds, args.start_seconds)
                row[label] = run_one(SCENARIOS[name], rack, policy, transitions)
                shown = {k: v for k, v in row[label].items() if k != "phases"}
                print(f"  {rack} | {name} | {label}: {shown}", flush=True)
            rows.append(row)
    return rows


def _down(cost: dict[str, Any]) -> str:
    seconds = cost["down_s"]
    return " / ".join(f"{seconds.get(f'instance-{k}', 0.0):.1f}" for k in range(INSTANCES))


def table_headers() -> list[str]:
    headers = ["scenario", "phase"]
    for policy in POLICIES:
        figures = ("cycles", "hard stops", "guest power-offs", "down s (i0 / i1 / i2)")
        headers += [f"{policy}: {figure}" for figure in figures]
    return headers


def table_rows(rows: list[dict[str, Any]]) -> list[list[object]]:
    """One line per phase group: the deferred and the immediate policy side by side."""
    lines: list[list[object]] = []
    for row in rows:
        label = f"{row['scenario']} ({row['rack']})"
        for group in row["immediate"]["groups"]:
            line: list[object] = [label, group]
            for policy in POLICIES:
                cost = row.get(policy, {}).get("groups", {}).get(group)
                if cost is None:
                    line += ["n/a"] * 4
                else:
                    line += [cost["cycles"], cost["hard_stops"], cost["guest_power_offs"]]
                    line.append(_down(cost))
            lines.append(line)
            label = ""
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stop-seconds", type=float, default=0.5)
    parser.add_argument("--start-seconds", type=float, default=0.5)
    parser.add_argument("--racks", default=",".join(RACKS), help="cold-plug,hot-plug")
    parser.add_argument("--scenarios", default="", help="substrings of scenario names")
    parser.add_argument("--no-results", action="store_true", help="do not write the JSON")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("workloads runs oxide-csi dev, which needs root")
    wanted = [w for w in args.scenarios.split(",") if w]
    names = [n for n in SCENARIOS if not wanted or any(w in n for w in wanted)]
    settings: dict[str, Any] = {
        "instances": INSTANCES,
        "job_runs": JOB_RUNS,
        "stop_seconds": args.stop_seconds,
        "start_seconds": args.start_seconds,
        "detach_policy_flag": supports_detach_policy(),
        "process": "oxide-csi dev --instances 3 [--hotplug] [--detach-policy P], fresh per run",
        "cycles": "power-offs: hard stops (API stop) + guest power-offs; down s: not running",
    }
    print(f"workloads on {machine_line()}; settings {settings}", flush=True)
    rows = run_all(args, names)
    print_table("Power cycles per workload phase", table_headers(), table_rows(rows))
    for check in promises(rows):
        verdict = "met" if check["measured"] == check["expected"] else "MISSED"
        print(
            f"deferred policy, cold-plug rack, {check['promise']}: {check['measured']} "
            f"(expected {check['expected']}): {verdict}"
        )
    if not args.no_results:
        print(f"results: {write_results('workloads', settings, rows)}")


if __name__ == "__main__":
    main()
