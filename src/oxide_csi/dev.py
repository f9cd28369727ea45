"""``oxide-csi dev``: the whole plugin on one machine, against a simulated Oxide.

Why in one process: a developer (or the README's first command) should get a working CSI
endpoint with one command and no credentials. This module is the only part of the plugin that
knows the simulator: it starts one on loopback with a fresh random token, points the plugin's
own configuration at it, and then runs the very same ``serve`` code path a cluster runs, in
mode ``all``. This machine plays the part of the simulator's first instance, so the node id is
that instance's UUID, exactly as a real node reads it from ``product_uuid``.

State (the simulated rack, the disks' data files, the controller's attach record) lives under
``--state-dir`` and survives a restart.
"""

from __future__ import annotations

import argparse
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from oxide_csi.config import ServeConfig, build_serve_config

DEFAULT_DEV_STATE = Path("/var/lib/oxide-csi-dev")
DEFAULT_DEV_ENDPOINT = "unix:///run/oxide-csi/csi.sock"


def add_dev_parser(sub: Any) -> None:
    dev = sub.add_parser("dev", help="run the plugin against a simulated Oxide on this machine")
    dev.add_argument("--endpoint", default=DEFAULT_DEV_ENDPOINT, help="CSI endpoint to serve")
    dev.add_argument("--state-dir", default=str(DEFAULT_DEV_STATE), help="where state is kept")
    dev.add_argument("--instances", type=int, default=2, help="simulated instances (>= 1)")
    dev.add_argument("--sim-listen", default="127.0.0.1:0", help="simulator HOST:PORT")
    dev.add_argument("--stop-seconds", type=float, default=1.0, help="simulated stop time")
    dev.add_argument("--start-seconds", type=float, default=1.0, help="simulated start time")
    dev.add_argument("--max-disks-per-instance", default="8", help="disk slots per instance")


def run_dev(args: argparse.Namespace, serve: Callable[[ServeConfig], int]) -> int:
    """Start the simulator, then ``serve`` the plugin configured against it until signalled."""
    from oxide_sim import SimConfig, SimulatorServer

    state = Path(args.state_dir)
    host, _, port = str(args.sim_listen).rpartition(":")
    token = "oxide-token-dev-" + secrets.token_hex(16)
    sim_cfg = SimConfig(
        token=token,
        instances=max(1, int(args.instances)),
        state_dir=state / "sim",
        listen=(host or "127.0.0.1", int(port or 0)),
        stop_seconds=float(args.stop_seconds),
        start_seconds=float(args.start_seconds),
        max_disks_per_instance=int(args.max_disks_per_instance),
        disk_data_dir=state / "disks",
    )
    with SimulatorServer(sim_cfg) as sim:
        node_id = _first_instance_id(sim.url, token, sim_cfg.project)
        config = build_serve_config(
            {
                "mode": "all",
                "endpoint": args.endpoint,
                "node_id": node_id,
                "state_dir": str(state / "controller"),
                "max_disks_per_instance": args.max_disks_per_instance,
                "attach_batch_window": "0.5",
            },
            {"OXIDE_HOST": sim.url, "OXIDE_TOKEN": token, "OXIDE_PROJECT": sim_cfg.project},
        )
        print(f"oxide-csi dev: simulated Oxide at {sim.url}, node id {node_id}", flush=True)
        print(f"oxide-csi dev: serving CSI on {args.endpoint}", flush=True)
        return serve(config)


def _first_instance_id(url: str, token: str, project: str) -> str:
    """This machine's part: the simulator's first instance (by name)."""
    import httpx  # imported here: plain `oxide-csi --version` should not pay for it

    response = httpx.get(
        f"{url}/v1/instances",
        params={"project": project, "limit": 1, "sort_by": "name_ascending"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    response.raise_for_status()
    items = response.json()["items"]
    return str(items[0]["id"])
