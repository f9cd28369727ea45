"""Every kind of answer the simulator gives, held against the Oxide OpenAPI document.

Why here as well as in CI: CI checks the traffic of the whole suite, which covers what the
other tests happen to do; this test makes sure each route and each error path of the simulator
answers in the document's shapes, and fails next to the simulator code when one drifts.
Needs the document (../shared, or $OXIDE_OPENAPI) and the ``conformance`` extra; skips
without them, except under ``$OXIDE_CONFORMANCE_REQUIRED`` (CI), where it fails.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import uuid
from pathlib import Path
from types import ModuleType

import pytest

from oxide_sim import FaultConfig
from tests.sim.conftest import SimFactory
from tests.sim.helpers import (
    GIB,
    P,
    client,
    create_disk,
    disk_body,
    snapshot_disk_body,
    stop_instance,
    wait_for,
)

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = Path(
    os.environ.get("OXIDE_OPENAPI", ROOT.parent / "shared/oxide-api/oxide-openapi.json")
)

pytestmark = pytest.mark.conformance


def _lacking(reason: str) -> None:
    """Skip for lack of a tool, except where CI demands the check (``.ci/run`` sets
    ``$OXIDE_CONFORMANCE_REQUIRED``): there a skip would pass a check that never ran."""
    if os.environ.get("OXIDE_CONFORMANCE_REQUIRED"):
        pytest.fail(f"conformance check required, but {reason}")
    pytest.skip(reason)


def _checker() -> ModuleType:
    if importlib.util.find_spec("openapi_schema_validator") is None:
        _lacking("openapi_schema_validator is not installed (the conformance extra)")
    if not DOCUMENT.is_file():
        _lacking(f"no Oxide OpenAPI document at {DOCUMENT}")
    spec = importlib.util.spec_from_file_location(
        "openapi_conformance", ROOT / ".ci/openapi_conformance.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_every_route_and_error_conforms(make_sim: SimFactory, tmp_path: Path) -> None:
    oc = _checker()
    log = tmp_path / "traffic.jsonl"
    sim = make_sim(traffic_log=log, attach_seconds=0.05, faults=FaultConfig(seed=1))
    missing = str(uuid.uuid4())
    with client(sim) as c:
        c.get("/v1/me")
        c.get("/v1/projects/default")
        c.get(f"/v1/projects/{missing}")
        c.get("/v1/utilization")
        c.get("/v1/images", params=P)
        c.get("/v1/images")
        inst = stop_instance(c)
        d = create_disk(c, "vol", size=2 * GIB, block_size=512)
        c.get("/v1/disks", params={**P, "limit": 1})
        c.get("/v1/disks/vol", params=P)
        c.get(f"/v1/disks/{missing}")
        c.post("/v1/disks", params=P, json=disk_body("vol"))
        c.post("/v1/disks", params=P, json=disk_body("bad", size=GIB + 512))
        c.post("/v1/disks", params=P, json=disk_body("Bad"))
        c.post("/v1/instances/instance-0/disks/attach", params=P, json={"disk": "vol"})
        c.get(f"/v1/disks/{d['id']}")  # attaching
        c.get(f"/v1/instances/{inst['id']}/disks", params={"limit": 1})
        wait_for(
            lambda: c.get(f"/v1/disks/{d['id']}").json()["state"]["state"] == "attached", "attached"
        )
        snap = c.post(
            "/v1/snapshots", params=P, json={"name": "s", "description": "", "disk": "vol"}
        ).json()
        c.get("/v1/snapshots", params=P)
        c.get("/v1/snapshots/s", params=P)
        c.post("/v1/disks", params=P, json=snapshot_disk_body("copy", snap["id"], 2 * GIB))
        c.delete("/v1/disks/vol", params=P)  # refused: attached
        c.post("/v1/instances/instance-0/disks/detach", params=P, json={"disk": d["id"]})
        c.post(f"/v1/instances/{inst['id']}/start")
        c.post("/v1/instances/instance-0/start", params=P)
        c.get("/v1/instances", params=P)
        c.post("/v1/instances/instance-1/stop", params=P)
        c.post("/v1/instances/instance-1/start", params=P)  # 409 while stopping
        c.post("/sim/instances/instance-1/start-failures", json={"count": 1})
        stop_instance(c, "instance-1")
        c.post("/v1/instances/instance-1/start", params=P)  # 507
        c.delete(f"/v1/snapshots/{snap['id']}")
        c.delete("/v1/disks/copy", params=P)
        c.get("/v1/me", headers={"api-version": "2099010100.0.0"})
        c.get("/v1/me", headers={"api-version": "nope"})
        c.put(
            "/sim/faults", json={"error_rate": 1, "error_statuses": [429, 500, 502, 503, 504, 507]}
        )
        for _ in range(12):
            c.get("/v1/me")
    with client(sim, token="wrong") as c:
        c.get("/v1/me")
    report = oc.check_log(oc.Spec.load(DOCUMENT), log.read_text().splitlines())
    assert report.failed == 0, "\n".join(report.lines)
    assert report.passed >= 40
