"""The operator's guide's table of chart values is the chart's own, and cannot drift."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from tests.deploy.chart import CHART_DIR

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "chart_values_doc.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("chart_values_doc", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


doc = _load()


def _leaves(node: object, schema: dict[str, object], path: str = "") -> set[str]:
    """Independent of the script: every key path down to what the schema leaves open."""
    if not isinstance(node, dict) or not node:
        return {path}
    props = schema.get("properties")
    if not isinstance(props, dict) or "description" in schema:
        return {path}
    found: set[str] = set()
    for key, value in node.items():
        child = props.get(key, {})
        found |= _leaves(value, child, f"{path}.{key}" if path else key)
    return found


def test_the_guide_is_current() -> None:
    assert doc.main(["--check"]) == 0


def test_every_value_has_a_row_and_every_row_a_value() -> None:
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    guide = doc.GUIDE.read_text()
    table = guide[guide.index(doc.BEGIN) : guide.index(doc.END)]
    documented = {line.split("`")[1] for line in table.splitlines() if line.startswith("| `")}
    assert documented == _leaves(values, schema)
    assert "oxide.maxDisksPerInstance" in documented  # the walk reached the leaves


def test_a_stale_table_fails_the_check(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    stale = tmp_path / "guide.md"
    text = doc.GUIDE.read_text()
    stale.write_text(text.replace("| `commonLabels` |", "| `commonLabel` |"))
    monkeypatch.setattr(doc, "GUIDE", stale)
    assert doc.main(["--check"]) == 1
    assert doc.main([]) == 0  # regenerating mends it
    assert stale.read_text() == text


def test_an_undocumented_value_is_an_error() -> None:
    values = {"documented": 1, "newKey": 2}
    with pytest.raises(ValueError, match="newKey"):
        doc.rows(values, {}, {"documented": "a value"})


def test_comments_are_read_per_key_and_lists_stay_whole() -> None:
    text = (
        "# -- Top.\n"
        "top:\n"
        "  # The first.\n"
        "  first: 1\n"
        "  second: 2\n"
        "  # A list.\n"
        "  items:\n"
        "    - name: a\n"
        "      # not a key of ours\n"
        "      inner: b\n"
    )
    assert doc.comments_by_path(text) == {
        "top": "Top.",
        "top.first": "The first.",
        "top.items": "A list.",
    }
