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
    release = asyncio.Event()
    real_stop = client.stop_instance

    async def held_stop(*args: Any, **kwargs: Any) -> Any:
        await release.wait()
        return await real_stop(*args, **kwargs)

    monkeypatch.setattr(client, "stop_instance", held_stop)
    return release
