"""The node plugin's side of graceful power-off: a heartbeat, and the power-off itself.

The heartbeat says "someone on this instance can answer a power-off request" and carries the
identity a request must name (the host's boot id, this process's start). The handler reads the
requests for this instance and acts on one only when :func:`~.messages.refusal` finds nothing
against it, at most once per request. Acting means an orderly power-off of the host through its
init (:class:`CommandPowerOff`), so kubelet's graceful node shutdown runs; dev mode passes its
own (sync, unmount, tell the simulator the guest powered itself off).

Both parts can be switched off on their own (tests, and an operator who wants the heartbeat's
"nobody answers here" without the handler). Either failing is logged and retried, never fatal:
without them the controller falls back to Oxide's hard stop, which is what it did before.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from oxide_csi.poweroff.messages import (
    Heartbeat,
    NodeChannel,
    NodeSelf,
    PowerOffRequest,
    refusal,
)

log = structlog.get_logger(__name__)

#: Where Linux tells this boot apart from every other one.
BOOT_ID_FILE = Path("/proc/sys/kernel/random/boot_id")
#: The host's init powers it off: PID 1's namespaces (the pod needs hostPID), systemd's own
#: command, so logind's inhibitors and kubelet's graceful node shutdown run as on any poweroff.
DEFAULT_COMMAND = ("nsenter", "--target", "1", "--all", "--", "systemctl", "poweroff")
#: How often the heartbeat looks at the boot id (a new one is written at once).
_LOOK_SECONDS = 0.5
#: How long one reading of the requests (a Kubernetes watch) is trusted before it starts over.
REWATCH_SECONDS = 300.0


def read_boot_id(path: Path = BOOT_ID_FILE) -> str:
    """The host's boot id; empty when it cannot be read (the heartbeat then waits)."""
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return ""


@dataclass(frozen=True)
class CommandPowerOff:
    """Run the configured command (default :data:`DEFAULT_COMMAND`) to power the host off."""

    argv: Sequence[str] = DEFAULT_COMMAND
    timeout: float = 60.0

    def __call__(self) -> None:
        done = subprocess.run(
            list(self.argv),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=self.timeout,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(self.argv)} exited {done.returncode}: {done.stderr.strip()[:500]}"
            )


class GuestAgent:
    """Heartbeat and request handler of one node plugin, as one background task."""

    def __init__(
        self,
        channel: NodeChannel,
        *,
        instance_id: str,
        boot_id: Callable[[], str],
        power_off: Callable[[], None] | None,
        heartbeat: bool = True,
        period: float = 10.0,
        duration: float = 40.0,
        clock: Callable[[], float] = time.time,
        rewatch: float = REWATCH_SECONDS,
    ) -> None:
        self._channel = channel
        self._instance_id = instance_id
        self._boot_id = boot_id
        self._power_off = power_off
        self._heartbeat = heartbeat
        self._period = period
        self._duration = duration
        self._clock = clock
        self._rewatch = rewatch
        self.started = clock()
        self._acted: set[str] = set()
        #: Request id -> why it was ignored (the last few; for logs' readers and tests).
        self.ignored: dict[str, str] = {}

    def start(self) -> Callable[[], Awaitable[None]]:
        """Run in the background; return what stops it (and closes the channel)."""
        tasks = []
        if self._heartbeat:
            tasks.append(asyncio.ensure_future(self._beat_forever()))
        if self._power_off is not None:
            tasks.append(asyncio.ensure_future(self._handle_forever()))
        log.info(
            "graceful power-off agent started",
            instance=self._instance_id,
            heartbeat=self._heartbeat,
            handler=self._power_off is not None,
        )

        async def close() -> None:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await self._channel.close()

        return close

    # ---- heartbeat -----------------------------------------------------------------------

    async def _beat_forever(self) -> None:
        """Renew every ``period``; at once when the boot id changes, and once more at the next
        look (a beat written just before the instance's new run began would not count as
        this run's, see ``controller/attach/graceful.py``). A failed write is retried after
        a pause, not at every look."""
        written_boot, written_at, retry_at, again = "", float("-inf"), float("-inf"), False
        while True:
            now = self._clock()  # before the boot id: a beat renewed after a boot names it
            boot = self._boot_id()
            stale = boot != written_boot or again or now - written_at >= self._period
            if boot and stale and now >= retry_at:
                beat = Heartbeat(self._instance_id, boot, self.started, now, self._duration)
                try:
                    await self._channel.beat(beat)
                    again = boot != written_boot
                    written_boot, written_at = boot, now
                except Exception as exc:  # the controller falls back to a hard stop meanwhile
                    retry_at = now + min(self._period, 5.0)
                    log.warning("heartbeat not written", error=repr(exc))
            await asyncio.sleep(min(self._period, _LOOK_SECONDS))

    # ---- requests ------------------------------------------------------------------------

    async def _handle_forever(self) -> None:
        """Read requests for ever. The reading starts over every ``rewatch`` seconds (a watch
        whose connection died without a word would otherwise wait in vain), and a second
        after a failure; a request seen again is neither acted on nor logged twice."""
        while True:
            try:
                async with asyncio.timeout(self._rewatch):
                    async for request in self._channel.requests(self._instance_id):
                        await self._consider(request)
            except TimeoutError:
                continue
            except Exception as exc:
                log.warning("reading power-off requests failed; retrying", error=repr(exc))
            await asyncio.sleep(1.0)

    async def _consider(self, request: PowerOffRequest) -> None:
        if request.id in self._acted or request.id in self.ignored:
            return
        me = NodeSelf(self._instance_id, self._boot_id(), self.started)
        why = refusal(request, me, self._clock())
        if why is not None:
            if len(self.ignored) >= 16:
                self.ignored.pop(next(iter(self.ignored)))
            if me.boot_id:  # a refusal for good (an unreadable boot id may pass next time)
                self.ignored[request.id] = why
            log.info(
                "power-off request ignored",
                reason=why,
                request=request.id,
                run=request.run,
                issuer=request.issuer,
            )
            return
        self._acted.add(request.id)
        log.warning(
            "powering this host off at the controller's request",
            request=request.id,
            run=request.run,
            issuer=request.issuer,
        )
        assert self._power_off is not None
        try:
            await asyncio.to_thread(self._power_off)
        except Exception as exc:  # the controller falls back to a hard stop after its timeout
            log.error("orderly power-off failed", request=request.id, error=str(exc))
