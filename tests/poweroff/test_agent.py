"""The node's side: when a request is acted on, and that it is acted on once.

The agent runs in this process on the file channel; its power-off only counts calls.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from pathlib import Path

import pytest

from oxide_csi.poweroff.agent import CommandPowerOff, GuestAgent, read_boot_id
from oxide_csi.poweroff.files import FileChannel
from oxide_csi.poweroff.messages import (
    Heartbeat,
    MessageError,
    NodeSelf,
    PowerOffRequest,
    refusal,
)

ME = NodeSelf("inst-1", "boot-1", 1000.0)
GOOD = PowerOffRequest("inst-1", "run-1", "boot-1", 1000.0, issued=1100.0, expires=1200.0)


@pytest.mark.parametrize(
    ("request_", "now", "why"),
    [
        (GOOD, 1150.0, None),
        (replace(GOOD, instance_id="inst-2"), 1150.0, "another instance"),
        (replace(GOOD, boot_id="boot-0"), 1150.0, "another boot"),
        (replace(GOOD, node_started=999.0), 1150.0, "another start"),
        (GOOD, 1200.0, "expired"),
    ],
)
def test_refusal(request_: PowerOffRequest, now: float, why: str | None) -> None:
    found = refusal(request_, ME, now)
    assert (found is None) if why is None else (found is not None and why in found)


def test_messages_round_trip_and_refuse_garbage() -> None:
    assert PowerOffRequest.from_json(GOOD.to_json()) == GOOD
    beat = Heartbeat("inst-1", "boot-1", 1000.25, 1001.5, 40.0)
    assert Heartbeat.from_json(beat.to_json()) == beat
    assert beat.live(1041.0) and not beat.live(1041.5)
    garbage: list[object] = [[], {"id": "x"}, {**GOOD.to_json(), "expires": "soon"}]
    for bad in garbage:
        with pytest.raises(MessageError):
            PowerOffRequest.from_json(bad)


async def _eventually(predicate: Callable[[], object], what: str) -> None:
    end = time.monotonic() + 10
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.005)


async def test_the_agent_beats_and_acts_once_on_a_request_for_its_boot(tmp_path: Path) -> None:
    channel = FileChannel(tmp_path, poll=0.01)
    boot = tmp_path / "boot_id"
    boot.write_text("boot-a\n")
    calls: list[str] = []
    agent = GuestAgent(
        channel,
        instance_id="inst-1",
        boot_id=lambda: read_boot_id(boot),
        power_off=lambda: calls.append("off"),
        period=60,
        duration=120,
    )
    close = agent.start()
    try:
        await _eventually(lambda: channel.heartbeat_path("inst-1").exists(), "a heartbeat")
        beat = await channel.heartbeat("inst-1")
        assert beat is not None and (beat.boot_id, beat.started) == ("boot-a", agent.started)

        now = time.time()
        stale = PowerOffRequest("inst-1", "r", "boot-0", agent.started, now, now + 60)
        await channel.send(stale)
        await _eventually(lambda: stale.id in agent.ignored, "the stale request to be seen")
        assert "another boot" in agent.ignored[stale.id] and calls == []
        good = PowerOffRequest("inst-1", "r", "boot-a", agent.started, now, now + 60)
        await channel.send(good)
        await _eventually(lambda: calls == ["off"], "the power-off")
        await channel.send(good)  # the same request written again: still once
        other = replace(good, id="second", boot_id="boot-a")
        await channel.send(other)
        await _eventually(lambda: len(calls) == 2, "the second request")

        boot.write_text("boot-b\n")  # the host rebooted (same plugin start: dev mode's guest)
        await _eventually(
            lambda: (
                read_boot_id(boot) == "boot-b"
                and (b := _beat(channel)) is not None
                and b.boot_id == "boot-b"
            ),
            "the new boot in the heartbeat",
        )
    finally:
        await close()
    assert calls == ["off", "off"]


def _beat(channel: FileChannel) -> Heartbeat | None:
    import json

    path = channel.heartbeat_path("inst-1")
    return Heartbeat.from_json(json.loads(path.read_text())) if path.exists() else None


def test_the_power_off_command_reports_failure() -> None:
    CommandPowerOff(("true",))()
    with pytest.raises(RuntimeError, match="exited 3"):
        CommandPowerOff(("sh", "-c", "echo nope >&2; exit 3"))()


async def test_a_silent_reading_of_requests_starts_over(tmp_path: Path) -> None:
    """A watch whose connection died without a word yields nothing for ever: the agent reads
    again after ``rewatch``, and a request it sees again is not logged twice."""
    readings: list[int] = []
    seen_again = PowerOffRequest("inst-1", "r", "old-boot", 1.0, 1.0, 2.0)

    class Silent(FileChannel):
        async def requests(self, instance_id: str) -> AsyncIterator[PowerOffRequest]:
            readings.append(1)
            yield seen_again
            await asyncio.Event().wait()  # never again a word

    boot = tmp_path / "boot_id"
    boot.write_text("boot-a\n")
    agent = GuestAgent(
        Silent(tmp_path),
        instance_id="inst-1",
        boot_id=lambda: read_boot_id(boot),
        power_off=lambda: None,
        heartbeat=False,
        rewatch=0.05,
    )
    close = agent.start()
    try:
        await _eventually(lambda: len(readings) >= 3, "the reading to start over")
    finally:
        await close()
    assert list(agent.ignored) == [seen_again.id]
