"""The waiters' schedule, replayed on paper (no clock): how late a look notices a transition,
and how many looks it costs, with and without a learned expectation."""

from __future__ import annotations

import math

import pytest

from oxide_csi.oxide.polling import Polling, TransitionMemory
from oxide_csi.oxide.waiters import wait_for_state

POLLING = Polling(initial=0.1, ratio=0.05, maximum=2.0)


def _looks(polling: Polling, done_at: float, expected: float | None = None) -> tuple[int, float]:
    """(requests made, lateness) for a transition that ends ``done_at`` after the wait began;
    requests are taken to be instant."""
    t, looks = 0.0, 1
    while t < done_at:
        t += polling.delay(t, expected)
        looks += 1
    return looks, t - done_at


@pytest.mark.parametrize("done_at", [0.05, 2.0, 3.0, 10.0, 40.0])
def test_a_transition_is_noticed_within_a_fraction_of_its_duration(done_at: float) -> None:
    looks, late = _looks(POLLING, done_at)
    assert late <= max(POLLING.initial, min(POLLING.maximum, 0.05 * done_at)) + 1e-9
    # Below the cap the request count grows with the logarithm of the wait: about 21 looks
    # in the first 2 s, then 21 more each time the wait grows e-fold (1 / ln 1.05).
    assert looks <= 22 + 21 * max(0.0, math.log(done_at / 2.0))


def test_long_waits_look_at_most_every_maximum() -> None:
    looks, late = _looks(POLLING, 3600.0)
    assert late <= 2.0
    assert looks < 3600.0 / 2.0 + 70


def test_delay_is_floored_and_capped() -> None:
    assert POLLING.delay(0.0) == 0.1
    assert POLLING.delay(10.0) == pytest.approx(0.5)
    assert POLLING.delay(3600.0) == 2.0


@pytest.mark.parametrize("done_at", [2.0, 3.0, 30.0, 60.0])
def test_an_expected_end_is_noticed_within_the_dense_interval(done_at: float) -> None:
    looks, late = _looks(POLLING, done_at, expected=done_at)
    without_memory, late_without = _looks(POLLING, done_at)
    dense = max(POLLING.dense_floor, POLLING.dense * done_at)
    assert late <= dense + 1e-9
    assert late < late_without or late_without == 0
    # The window is 30 % of the expectation looked at every 1 %: at most ~16 looks before
    # the end, on top of the schedule's own.
    assert looks <= without_memory + 16


@pytest.mark.parametrize("expected", [0.1, 1.0, 2.0, 2.5, 3.0, 10.0, 100.0])
@pytest.mark.parametrize("done_at", [0.5, 2.0, 3.0, 7.0, 45.0])
def test_a_wrong_expectation_keeps_the_lateness_bound(expected: float, done_at: float) -> None:
    for waited in (0.0, 0.3, 1.0, 1.7, 2.0, 2.6, 3.4, 9.0, 11.0, 50.0, 120.0):
        assert POLLING.delay(waited, expected) <= POLLING.delay(waited)
    # Every sleep is at most the plain schedule's, which only grows with the time waited:
    # the end is noticed within the plain schedule's interval at that time.
    assert _looks(POLLING, done_at, expected)[1] <= POLLING.delay(done_at) + 1e-9


def test_memory_expects_the_median_of_the_recent_waits() -> None:
    memory = TransitionMemory(keep=3)
    assert memory.expected("instance->stopped") is None
    for seconds in (2.0, 30.0, 2.2):  # one outlier
        memory.observe("instance->stopped", seconds)
    assert memory.expected("instance->stopped") == 2.2
    for seconds in (5.0, 5.0, 5.0):  # the oldest are forgotten
        memory.observe("instance->stopped", seconds)
    assert memory.expected("instance->stopped") == 5.0
    assert memory.expected("instance->running") is None


async def _wait(states: list[str], memory: TransitionMemory) -> str:
    looks = iter(states)

    async def fetch(deadline: float) -> str:
        return next(looks)

    return await wait_for_state(
        fetch,
        lambda s: s,
        want={"stopped"},
        fail={"failed"},
        deadline=math.inf,
        kind="instance",
        name="i",
        polling=Polling(initial=0.001, ratio=0.05, maximum=0.01),
        memory=memory,
    )


async def test_a_wait_that_saw_the_transition_teaches_the_memory() -> None:
    memory = TransitionMemory()
    assert await _wait(["stopped"], memory) == "stopped"
    assert memory.expected("instance->stopped") is None  # nothing was waited for
    assert await _wait(["stopping", "stopping", "stopped"], memory) == "stopped"
    learned = memory.expected("instance->stopped")
    assert learned is not None and 0.002 <= learned < 1.0
