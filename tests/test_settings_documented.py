"""Every environment variable ``serve`` reads is a documented setting.

Why: a variable the plugin reads but the README does not name is a hidden switch (the loop
device directory, for one, changes which devices a node takes as its disks); either it is a
setting an operator can look up, or it goes.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
READ_ENV = re.compile(r'env\.get\("([A-Z][A-Z0-9_]+)"\)|env, "([A-Z][A-Z0-9_]+)"')


def _configuration_section() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]


def test_every_variable_serve_reads_is_in_the_readme() -> None:
    source = (ROOT / "src/oxide_csi/config.py").read_text()
    names = {a or b for a, b in READ_ENV.findall(source)}
    assert {"OXIDE_PROJECT", "CSI_MODE", "OXIDE_CSI_LOOP_DEVICE_DIR"} <= names
    section = _configuration_section()
    assert sorted(n for n in names if f"`{n}`" not in section) == []
