"""Polling until a resource reaches a wanted state.

Oxide's state changes are asynchronous: ``stop`` answers 202 with the instance ``stopping``, a
new disk may be ``creating``. Callers need "wait until X, but not forever, and tell me at once
if it can no longer happen": poll (see ``Polling`` for how often), return as soon as the state
is wanted, raise ``OxideUnexpectedState`` on a state the resource does not leave by itself
(a faulted disk, a failed instance Oxide will not restart), and ``OxideTimeout`` at the
deadline. Transient API failures while polling are ridden out until the deadline, because a
waiter's whole point is patience.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection
from typing import TypeVar

from oxide_csi.oxide import api_errors
from oxide_csi.oxide.polling import Polling, TransitionMemory

T = TypeVar("T")

#: States nothing but an operator (or a delete) moves a resource out of.
DISK_FAIL_STATES = frozenset({"faulted", "destroyed"})
INSTANCE_FAIL_STATES = frozenset({"failed", "destroyed"})
SNAPSHOT_FAIL_STATES = frozenset({"faulted", "destroyed"})

_TRANSIENT = (api_errors.OxideUnavailable, api_errors.OxideServerError, api_errors.OxideRateLimited)


async def wait_for_state(
    fetch: Callable[[float], Awaitable[T]],
    state_of: Callable[[T], str],
    *,
    want: Collection[str],
    fail: Collection[str],
    deadline: float,
    kind: str,
    name: str,
    polling: Polling,
    memory: TransitionMemory | None = None,
    final: Callable[[T, float], bool] | None = None,
) -> T:
    """Poll ``fetch(deadline)`` until ``state_of`` the result is in ``want``.

    ``fail`` states that are also wanted count as wanted. ``final(resource, deadline)`` may
    say that a fail state is not final for this resource yet (a failed instance that Oxide
    will restart before the deadline): the wait then goes on. ``name`` appears in messages.
    ``memory`` learns how long waits of this kind (``kind`` and ``want``) take, and paces the
    looks by it; only waits that saw the resource in another state first teach it.
    """
    fatal = frozenset(fail) - frozenset(want)
    started = time.monotonic()
    key = f"{kind}->{_fmt(want)}"
    expected = memory.expected(key) if memory is not None else None
    looks = 0
    last_state: str | None = None
    last_error: api_errors.OxideError | None = None
    while True:
        try:
            current = await fetch(deadline)
        except api_errors.OxideTimeout as exc:
            raise _too_late(kind, name, want, last_state, exc.last_error or last_error) from None
        except _TRANSIENT as exc:
            last_error = exc
        else:
            looks += 1
            last_state = state_of(current)
            if last_state in want:
                if memory is not None and looks > 1:
                    memory.observe(key, time.monotonic() - started)
                return current
            if last_state in fatal and (final is None or final(current, deadline)):
                raise api_errors.OxideUnexpectedState(
                    f"{kind} {name!r} is {last_state}, which it will not leave by itself "
                    f"(waited for {_fmt(want)})",
                    kind=kind,
                    resource=name,
                    state=last_state,
                )
        now = time.monotonic()
        left = deadline - now
        if left <= 0:
            raise _too_late(kind, name, want, last_state, last_error)
        await asyncio.sleep(min(polling.delay(now - started, expected), left))
        if time.monotonic() >= deadline:
            raise _too_late(kind, name, want, last_state, last_error)


def _fmt(states: Collection[str]) -> str:
    return "/".join(sorted(states))


def _too_late(
    kind: str,
    name: str,
    want: Collection[str],
    state: str | None,
    last_error: api_errors.OxideError | None,
) -> api_errors.OxideTimeout:
    seen = f"last seen {state}" if state is not None else "state never seen"
    return api_errors.OxideTimeout(
        f"{kind} {name!r} did not become {_fmt(want)} before the deadline ({seen})",
        last_error=last_error,
    )
