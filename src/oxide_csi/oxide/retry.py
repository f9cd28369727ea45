"""What counts as worth retrying, and how long to wait before doing so.

Two questions decide every retry: is the failure *transient* (a second try can succeed), and may
the server already have *applied* the request (so a second try could do the work twice, or fail
with "already exists" although our own first try succeeded)? The transport asks them here and
keeps the policy -- which requests may be repeated under which answers -- in one place.
"""

from __future__ import annotations

import enum
import random
from dataclasses import dataclass

import httpx

#: Statuses after which an identical request may succeed.
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})

#: Statuses that prove the server did not act: 429 is refused at the door. Everything else that
#: is transient (500, 502, 503, 504, a dropped connection, a read timeout) leaves it open whether
#: the request took effect; 503 usually means "not processed", but a proxy or a Nexus that fails
#: while answering can send it after the work is done, so we do not rely on it.
NOT_APPLIED_STATUSES = frozenset({429})

#: Statuses after which a retry of a create may go ahead directly; a create that nonetheless
#: took effect shows up as ``ObjectAlreadyExists`` on the retry and is resolved by lookup.
CREATE_RETRY_DIRECTLY = frozenset({429, 503})

#: Client errors that a retry may meet *because* an earlier attempt took effect: the object now
#: exists (400), is gone (404), or is already in the target state (400/409 state complaints).
RESOLVABLE_STATUSES = frozenset({400, 404, 409})


class Safety(enum.Enum):
    """How freely a request may be repeated.

    ``SAFE``: reads and deletes -- repeating them cannot do the work twice (a repeated delete
    that meets 404 is resolved as done). ``CREATE``: a POST that makes a named resource --
    repeated blindly it either fails with ``ObjectAlreadyExists`` or, worse, makes a second
    resource. ``TRANSITION``: a POST that moves a resource (start, stop, attach, detach);
    Nexus forgives a repeat, but a stop is a hard power-off and a repeat after the world moved
    on (someone started the instance again) would act twice, so these are not repeated blindly
    either. Both non-SAFE kinds are repeated directly only when the failure shows nothing
    happened; after an ambiguous one the resolver looks at the resource first.
    """

    SAFE = "safe"
    CREATE = "create"
    TRANSITION = "transition"


@dataclass(frozen=True)
class Verdict:
    """The two answers for one failed attempt."""

    transient: bool
    maybe_applied: bool


def verdict_for_status(status: int) -> Verdict:
    transient = status in TRANSIENT_STATUSES
    return Verdict(
        transient=transient, maybe_applied=transient and status not in NOT_APPLIED_STATUSES
    )


def verdict_for_exception(exc: httpx.TransportError) -> Verdict:
    """Connection-level failures: only failing to get a connection proves nothing was sent."""
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return Verdict(transient=True, maybe_applied=False)
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.LocalProtocolError | httpx.ProxyError):
        # Our side is misconfigured; nothing reached the server and nothing will.
        return Verdict(transient=False, maybe_applied=False)
    # ReadTimeout, WriteTimeout, ReadError, WriteError, RemoteProtocolError: sent, unanswered.
    return Verdict(transient=True, maybe_applied=True)


def backoff_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Exponential backoff with "full jitter": uniform in [0, min(cap, base * 2**(attempt-1))].

    Jitter over the whole interval spreads the retries of many plugin replicas (or many volumes
    of one) so they do not hit a recovering rack in lock-step.
    """
    ceiling = min(cap, base * (2 ** max(0, attempt - 1)))
    return rng.uniform(0.0, ceiling)
