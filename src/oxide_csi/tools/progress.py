"""How ``oxide-csi demo`` shows its steps: live on a terminal, plain lines otherwise.

Why two forms: a person watching a terminal wants one line per step that moves while the step
runs (its elapsed time, and what the instance is doing right now), while a log file or a test
reading the output wants whole lines that never rewrite themselves. Both end with the same
summary table. Notes may come from another thread (the instance watch), hence the lock.
"""

from __future__ import annotations

import shutil
import threading
import time
from dataclasses import dataclass, field
from typing import Protocol, TextIO

OK = "ok"
FAILED = "FAILED"
INTERRUPTED = "interrupted"


@dataclass
class StepResult:
    name: str
    outcome: str = ""
    seconds: float = 0.0
    detail: str = ""
    started: float = field(default_factory=time.monotonic)


class Reporter(Protocol):
    def start(self, step: StepResult) -> None: ...
    def note(self, text: str) -> None: ...
    def finish(self, step: StepResult) -> None: ...
    def message(self, text: str) -> None: ...
    def close(self) -> None: ...


def summary_table(results: list[StepResult]) -> str:
    """The steps, their outcome and time, one row each, in a fixed-width table."""
    width = max([len(r.name) for r in results] + [4])
    lines = [f"{'step':<{width}}  {'result':<11}  {'seconds':>7}  detail"]
    for r in results:
        lines.append(f"{r.name:<{width}}  {r.outcome:<11}  {r.seconds:>7.2f}  {r.detail}")
    return "\n".join(lines)


class PlainReporter:
    """Whole lines only: ``demo: STEP ...``, ``demo: STEP: note``, ``demo: STEP ok (1.20 s)``."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._lock = threading.Lock()
        self._current = ""

    def _line(self, text: str) -> None:
        with self._lock:
            self._out.write(f"demo: {text}\n")
            self._out.flush()

    def start(self, step: StepResult) -> None:
        self._current = step.name
        self._line(f"{step.name} ...")

    def note(self, text: str) -> None:
        self._line(f"{self._current}: {text}")

    def finish(self, step: StepResult) -> None:
        tail = f": {step.detail}" if step.detail else ""
        self._line(f"{step.name} {step.outcome} ({step.seconds:.2f} s){tail}")

    def message(self, text: str) -> None:
        self._line(text)

    def close(self) -> None:
        pass


class LiveReporter:
    """One line per step, redrawn every tenth of a second while the step runs."""

    _SPIN = "|/-\\"

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._lock = threading.Lock()
        self._step: StepResult | None = None
        self._note = ""
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="demo-progress", daemon=True)
        self._ticker.start()

    def _draw(
        self, mark: str, step: StepResult, seconds: float, text: str, final: bool = False
    ) -> None:
        line = f"  {mark} {step.name:<10} {seconds:6.1f} s  {text}"
        if not final:  # a line that wraps could not be redrawn in place
            line = line[: shutil.get_terminal_size().columns - 1]
        self._out.write("\r\x1b[2K" + line)
        self._out.flush()

    def _tick(self) -> None:
        turn = 0
        while not self._stop.wait(0.1):
            with self._lock:
                if self._step is not None:
                    turn += 1
                    elapsed = time.monotonic() - self._step.started
                    self._draw(self._SPIN[turn % 4], self._step, elapsed, self._note)

    def start(self, step: StepResult) -> None:
        with self._lock:
            self._step, self._note = step, ""
            self._draw(" ", step, 0.0, "")

    def note(self, text: str) -> None:
        with self._lock:
            self._note = text

    def finish(self, step: StepResult) -> None:
        mark = "✓" if step.outcome == OK else "✗"
        with self._lock:
            self._step = None
            self._draw(mark, step, step.seconds, step.detail, final=True)
            self._out.write("\n")
            self._out.flush()

    def message(self, text: str) -> None:
        with self._lock:
            self._out.write("\r\x1b[2K" + text + "\n")
            self._out.flush()

    def close(self) -> None:
        self._stop.set()
        self._ticker.join()


def make_reporter(out: TextIO) -> Reporter:
    return LiveReporter(out) if out.isatty() else PlainReporter(out)
