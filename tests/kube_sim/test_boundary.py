"""The house rule for test servers: kube_sim imports nothing of the plugin (nor of oxide_sim),
and the plugin imports nothing of kube_sim; only tests, dev wiring and benchmarks know both."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def _imports(package: str) -> set[tuple[str, str]]:
    found = set()
    for path in (SRC / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found |= {(str(path), alias.name.split(".")[0]) for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add((str(path), node.module.split(".")[0]))
    return found


def test_kube_sim_imports_nothing_of_the_plugin() -> None:
    bad = {(p, m) for p, m in _imports("kube_sim") if m in ("oxide_csi", "oxide_sim")}
    assert bad == set()
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, kube_sim.cli; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert not [m for m in loaded if m.startswith(("oxide_csi", "oxide_sim"))]


def test_the_plugin_imports_nothing_of_kube_sim() -> None:
    assert {(p, m) for p, m in _imports("oxide_csi") if m == "kube_sim"} == set()
