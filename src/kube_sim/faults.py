"""What a test may do to the network between clients and the API server, per bearer token.

``block``: the token's requests get no answer at all (``hang``: held until unblocked, then the
connection is closed; ``reset``: closed at once), as when a controller is partitioned from
the API server but still reaches Oxide. ``inject``: matching requests are answered with an
error ``Status`` (429, 500, 503, 504...), either instead of doing anything or, with
``landed=True``, after the write was made, as an etcd timeout can report a write that in fact
happened.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from kube_sim.errors import ApiError

_REASONS = {
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


@dataclass
class _Rule:
    code: int
    token: str | None
    method: str | None
    path_contains: str | None
    remaining: int  # < 0: forever
    landed: bool

    def matches(self, method: str, path: str, token: str | None) -> bool:
        return (
            (self.token is None or self.token == token)
            and (self.method is None or self.method == method)
            and (self.path_contains is None or self.path_contains in path)
        )

    def error(self) -> ApiError:
        reason = _REASONS.get(self.code, "InternalError")
        return ApiError(self.code, reason, f"injected by kube_sim: {reason}")


class Faults:
    """Accepted tokens, blocked tokens and injected errors; shared with the HTTP threads."""

    def __init__(self, tokens: set[str]) -> None:
        self.tokens = tokens
        self._blocked: dict[str, str] = {}
        self._rules: list[_Rule] = []
        self.changed = threading.Condition()
        self.stopping = False

    def block(self, token: str, mode: str) -> None:
        if mode not in ("hang", "reset"):
            raise ValueError(f"unknown block mode {mode!r}")
        with self.changed:
            self._blocked[token] = mode
            self.changed.notify_all()

    def unblock(self, token: str) -> None:
        with self.changed:
            self._blocked.pop(token, None)
            self.changed.notify_all()

    def mode(self, token: str | None) -> str | None:
        with self.changed:
            return self._blocked.get(token) if token is not None else None

    def hang(self, token: str) -> None:
        """Wait until the token is unblocked or the server stops."""
        with self.changed:
            self.changed.wait_for(lambda: self.stopping or token not in self._blocked)

    def stop(self) -> None:
        with self.changed:
            self.stopping = True
            self.changed.notify_all()

    def inject(
        self,
        code: int,
        *,
        token: str | None,
        method: str | None,
        path_contains: str | None,
        times: int,
        landed: bool,
    ) -> None:
        with self.changed:
            self._rules.append(_Rule(code, token, method, path_contains, times, landed))

    def clear(self) -> None:
        with self.changed:
            self._rules.clear()

    def take(self, method: str, path: str, token: str | None) -> tuple[ApiError, bool] | None:
        """The injected error this request gets (and whether it lands first), used up once."""
        with self.changed:
            for rule in self._rules:
                if rule.remaining != 0 and rule.matches(method, path, token):
                    rule.remaining -= rule.remaining > 0
                    return rule.error(), rule.landed
        return None
