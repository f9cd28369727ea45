"""A small reader for the repository's Dockerfile: instructions with continuations joined.

Only what the tests need: the instruction list per stage and the exec-form arrays of
ENTRYPOINT and CMD. It understands the subset of the syntax the Dockerfile uses (comments,
backslash continuations, JSON exec form) and fails loudly on anything else it is asked about.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tests.deploy.chart import REPO

DOCKERFILE = REPO / "Dockerfile"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    value: str


def instructions(path: Path = DOCKERFILE) -> list[Instruction]:
    result: list[Instruction] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, value = full.partition(" ")
        result.append(Instruction(keyword.upper(), value.strip()))
    assert not pending, "Dockerfile ends inside a continued instruction"
    return result


def stages(path: Path = DOCKERFILE) -> list[list[Instruction]]:
    """Instructions grouped by FROM (instructions before the first FROM, i.e. ARGs, dropped)."""
    grouped: list[list[Instruction]] = []
    for ins in instructions(path):
        if ins.keyword == "FROM":
            grouped.append([])
        if grouped:
            grouped[-1].append(ins)
    return grouped


def exec_form(stage: list[Instruction], keyword: str) -> list[str]:
    """The last ``keyword`` (ENTRYPOINT or CMD) of a stage, which must be in JSON exec form."""
    found = [ins for ins in stage if ins.keyword == keyword]
    assert found, f"no {keyword} in the final stage"
    value = json.loads(found[-1].value)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), value
    return value
