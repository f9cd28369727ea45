"""The chart, the schema and the operator's guide agree with the plugin's own constants.

Each of these facts is written twice (once in Python, once in YAML/JSON/Markdown); these tests
make a change on one side fail until the other side follows.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

from prometheus_client import generate_latest

from oxide_csi import DRIVER_NAME
from oxide_csi.backend_health import BackendHealth
from oxide_csi.config import (
    DEFAULT_ENDPOINT,
    DEFAULT_KUBELET_DIR,
    DEFAULT_MAX_DISKS,
    ControllerSettings,
)
from oxide_csi.controller import parameters
from oxide_csi.controller.attach.released import LedgerFigures
from oxide_csi.metrics import PluginMetrics
from oxide_csi.metrics.backend import track_backend
from oxide_csi.metrics.ledger import track_ledger
from oxide_csi.volume_contract import FS_TYPES
from tests.deploy.chart import CHART_DIR, DRIVER, REPO, SOCKET, args_dict, containers, node, render

GUIDE = REPO / "docs" / "operator-guide.md"
README = REPO / "README.md"


def _schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((CHART_DIR / "values.schema.json").read_text())
    return schema


def test_driver_name_and_socket() -> None:
    assert DRIVER == DRIVER_NAME
    assert f"unix://{SOCKET}" == DEFAULT_ENDPOINT


def test_defaults_match_the_plugin() -> None:
    objects = render()
    plugin = containers(node(objects))["oxide-csi"]
    assert args_dict(plugin)["kubelet-dir"] == str(DEFAULT_KUBELET_DIR)
    env = {e["name"]: e.get("value") for e in plugin["env"]}
    assert env["OXIDE_MAX_DISKS_PER_INSTANCE"] == str(DEFAULT_MAX_DISKS)
    controller = next(o for o in objects if o["kind"] == "Deployment")
    args = args_dict(containers(controller)["oxide-csi"])
    assert args["state-dir"] == str(ControllerSettings.state_dir)


def test_schema_parameters_are_the_plugins() -> None:
    sc = _schema()["properties"]["storageClasses"]["items"]["properties"]["parameters"]
    assert set(sc["properties"]) == set(parameters.KNOWN_PARAMETERS)
    assert tuple(sc["properties"]["diskType"]["enum"]) == parameters.DISK_TYPES
    assert tuple(sc["properties"]["fsType"]["enum"]) == FS_TYPES
    sizes = sc["properties"]["blockSize"]["anyOf"]
    assert {tuple(int(v) for v in s["enum"]) for s in sizes} == {parameters.BLOCK_SIZES}
    assert list(sc["patternProperties"]) == ["^" + re.escape(parameters.KUBERNETES_PREFIX)]


def test_guide_documents_every_storage_class_parameter() -> None:
    guide = GUIDE.read_text()
    for name in parameters.KNOWN_PARAMETERS:
        assert f"| `{name}` |" in guide
        assert f"| `{name}` |" in README.read_text()
    for value in (*FS_TYPES, *map(str, parameters.BLOCK_SIZES)):
        assert f"`{value}`" in guide


def test_guide_lists_only_metrics_that_exist_and_all_plugin_metrics() -> None:
    metrics = PluginMetrics("controller", process=False)
    track_backend(metrics.registry, BackendHealth(lambda: asyncio.sleep(0)))  # as app.py does
    track_ledger(metrics.registry, LedgerFigures)  # as app.py does with the deferred policy
    exposition = generate_latest(metrics.registry).decode()
    exposed = set(re.findall(r"^# TYPE (oxide_csi_\w+) ", exposition, re.M))
    exposed = {name for name in exposed if not name.endswith("_created")}  # client bookkeeping
    documented = set(re.findall(r"`(oxide_csi_\w+)`", GUIDE.read_text()))
    assert documented == exposed
