"""What the reliability suites tried and found, printed at the end of every pytest run.

The counts (operations, faults injected, retries, leaks; fuzz inputs tried) are the evidence
these suites exist to give, so they go to the terminal summary instead of into captured output
that a passing run never shows.
"""

from __future__ import annotations

LINES: list[str] = []


def record(line: str) -> None:
    LINES.append(line.strip())
    print(line)
