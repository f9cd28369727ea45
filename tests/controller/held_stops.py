"""Hold a client's instance stops until the test releases them: batching without a window race.

Why: the coordinator keeps a batch open while the instance stops, so work queued before the
release joins the first cycle however slowly a busy machine runs the test. Tests that used to
fire N calls and hope they all landed inside a 0.1 s batch window wait for the N to be queued
(an event), then release the stop.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from oxide_csi.oxide import OxideClient


def hold_stops(client: OxideClient, monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """Make ``client.stop_instance`` wait for the returned event (set it to let stops through)."""
    return hold_calls(client, "stop_instance", monkeypatch)


def hold_starts(client: OxideClient, monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """Make ``client.start_instance`` wait for the returned event."""
    return hold_calls(client, "start_instance", monkeypatch)


def hold_calls(client: OxideClient, method: str, monkeypatch: pytest.MonkeyPatch) -> asyncio.Event:
    """Make the client's ``method`` wait for the returned event before it is called."""
    release = asyncio.Event()
    real = getattr(client, method)

    async def held(*args: Any, **kwargs: Any) -> Any:
        await release.wait()
        return await real(*args, **kwargs)

    monkeypatch.setattr(client, method, held)
    return release
