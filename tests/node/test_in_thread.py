"""A cancelled node call keeps its volume locked until its worker thread is really done."""

from __future__ import annotations

import asyncio
import threading

import pytest

from oxide_csi.servicers.node import _in_thread


async def test_cancellation_waits_for_the_thread() -> None:
    started, release, finished = threading.Event(), threading.Event(), threading.Event()

    def work() -> str:
        started.set()
        release.wait(30)
        finished.set()
        return "done"

    call = asyncio.create_task(_in_thread(work))
    await asyncio.to_thread(started.wait, 30)
    call.cancel()
    await asyncio.sleep(0)  # let the cancellation land
    assert not call.done(), "the call must not end while its thread still runs"
    call.cancel()  # a second cancellation does not cut the wait short either
    await asyncio.sleep(0)
    assert not call.done()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await call
    assert finished.is_set()


async def test_results_and_errors_pass_through() -> None:
    assert await _in_thread(lambda: 42) == 42

    def fail() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await _in_thread(fail)
