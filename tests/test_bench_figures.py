"""The README's benchmark figures can be traced to the results the benchmarks wrote.

Why: a figure in the README is a claim; each must come from a ``bench/results/<name>.json``
committed beside it (with the machine and the settings), and each benchmark's own pass/fail
check must use the threshold the README states, or the README can say "met" of a target the
benchmark never checked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench import attach_coalescing, formatting, node_memory, workloads

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])")


def _section() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split("\n## Benchmarks\n", 1)[1].split("\n## ", 1)[0]


def _tables() -> Iterator[tuple[str, list[str]]]:
    """(benchmark name, body rows) for each table: the table belongs to the last
    ``python -m bench.NAME`` named before it."""
    name = ""
    rows: list[str] = []
    for line in [*_section().splitlines(), ""]:
        if line.startswith("|"):
            rows.append(line)
            continue
        if rows:
            yield name, rows[2:]  # header and separator carry no figures
            rows = []
        found = re.findall(r"-m bench\.(\w+)", line)
        if found:
            name = found[-1]


def _numbers(value: Any) -> Iterator[float]:
    if isinstance(value, bool):
        return
    if isinstance(value, int | float):
        yield float(value)
    elif isinstance(value, str):
        yield from (float(n) for n in NUMBER.findall(value))
    elif isinstance(value, dict):
        for item in value.values():
            yield from _numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from _numbers(item)


def _traced(figure: str, recorded: list[float]) -> bool:
    """Whether some recorded value rounds to ``figure`` at the figure's precision."""
    decimals = len(figure.partition(".")[2])
    tolerance = 0.5 * 10**-decimals + 1e-9
    return any(abs(value - float(figure)) <= tolerance for value in recorded)


TABLES = list(_tables())


def test_the_section_has_a_table_for_each_benchmark() -> None:
    names = [name for name, _ in TABLES]
    expected = ["attach_coalescing", "throughput", "formatting", "provisioning", "node_memory"]
    expected.append("workloads")
    assert names == expected


@pytest.mark.parametrize(("name", "rows"), TABLES, ids=[name for name, _ in TABLES])
def test_every_figure_is_in_the_results_file(name: str, rows: list[str]) -> None:
    path = RESULTS / f"{name}.json"
    assert path.is_file(), f"{path} is not committed"
    body = json.loads(path.read_text())
    assert body["machine"]["cores"] and body["settings"], "results carry machine and settings"
    recorded = list(_numbers(body["rows"])) + list(_numbers(body["settings"]))
    untraced = [
        f"{figure} in {row.strip()}"
        for row in rows
        for figure in NUMBER.findall(row)
        if not _traced(figure, recorded)
    ]
    assert untraced == []


def test_benchmarks_check_the_thresholds_the_readme_states() -> None:
    section = _section()
    within = re.search(r"wall time within ([\d.]+)x of\s+a single cycle", section)
    single = re.search(r"a single cycle within ([\d.]+) %", section)
    stage = re.search(r"under ([\d.]+) s at 100 GiB", section)
    assert within and single and stage
    assert float(within.group(1)) == attach_coalescing.TARGET_WALL_VS_SINGLE
    assert pytest.approx(float(single.group(1)) / 100) == attach_coalescing.TARGET_SINGLE_OVER_SIM
    assert float(stage.group(1)) == formatting.TARGET_STAGE_S
    graceful = re.search(r"with graceful power-off \(at most ([\d.]+) MB at the peak\)", section)
    assert graceful and float(graceful.group(1)) == node_memory.TARGET_GRACEFUL_MB


def test_the_workload_figures_keep_issue_19s_promises() -> None:
    """The recorded run shows, for the deferred policy on a cold-plug rack, no cycle at the
    rolling restart's re-publishes nor at the deletions, and 2 for the move."""
    body = json.loads((RESULTS / "workloads.json").read_text())
    checked = workloads.promises(body["rows"])
    assert [c["measured"] for c in checked] == [c["expected"] for c in checked], checked
    assert body["settings"]["detach_policy_flag"] is True
