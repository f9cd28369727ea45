"""How often a waiter looks: relative to the time waited, and densest where the end is due.

Two facts shape the schedule. Transitions on a rack last from a fraction of a second (a disk
that is created at once) to a minute (an instance stop on a busy sled), so a fixed interval is
either late on the short ones or chatty on the long ones; sleeping a fixed ``ratio`` of the time
waited so far notices any transition at most that fraction of its duration late, with a number
of requests that grows only with the logarithm of the wait. And one rack's stops (or starts)
take about as long as each other, so once a few have been seen the end of the next one is
predictable: the waiter then looks densely around it and is late by a few hundredths of a
second instead of a few tenths. Memory only ever shortens a sleep, so a wrong expectation costs
some extra looks, never more lateness than the plain schedule allows.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Polling:
    """The schedule. ``initial`` is the floor of a sleep, ``maximum`` its ceiling, ``ratio``
    the share of the time waited so far; ``window`` is the half-width, as a share of an
    expected duration, of the span looked at every ``dense`` of it (but not more often than
    every ``dense_floor`` seconds)."""

    initial: float = 0.1
    ratio: float = 0.05
    maximum: float = 2.0
    window: float = 0.15
    dense: float = 0.01
    dense_floor: float = 0.02

    def delay(self, waited: float, expected: float | None = None) -> float:
        """The sleep before the next look, after ``waited`` seconds of a wait whose end is
        ``expected`` seconds after it began (``None`` when nothing is known)."""
        step = min(self.maximum, max(self.initial, waited * self.ratio))
        if expected is None:
            return step
        opens, closes = expected * (1 - self.window), expected * (1 + self.window)
        if waited < opens:
            return min(step, opens - waited)
        if waited < closes:
            return min(step, max(self.dense_floor, expected * self.dense))
        return step


class TransitionMemory:
    """The recent durations of each kind of wait (``"instance->stopped"``, ...), per client.

    The expectation is the median of the last ``keep`` (the upper one of an even count), so one
    slow outlier moves nothing. Sorting a handful by hand keeps ``statistics`` (and the decimal
    and fractions modules it loads) out of the node plugin, which imports this module too.
    """

    def __init__(self, keep: int = 8) -> None:
        self._keep = keep
        self._seen: dict[str, deque[float]] = {}

    def expected(self, key: str) -> float | None:
        seen = self._seen.get(key)
        return sorted(seen)[len(seen) // 2] if seen else None

    def observe(self, key: str, seconds: float) -> None:
        self._seen.setdefault(key, deque(maxlen=self._keep)).append(seconds)
