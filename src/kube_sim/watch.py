"""Watches: every write is a change record; each open watch gets the changes it can see.

A change is matched against each watch's namespace and selectors with the object before and
after, as the real watch cache does: an object that starts matching arrives as ADDED, one
that stops matching as DELETED, one that keeps matching as MODIFIED. The last ``HISTORY``
changes are kept so a watch may resume from a resourceVersion; older ones answer 410 Expired.
"""

from __future__ import annotations

import queue
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kube_sim.errors import ApiError
from kube_sim.resources import Resource

HISTORY = 2000
View = Callable[[Resource, dict[str, Any]], dict[str, Any]]
Matcher = Callable[[dict[str, Any]], bool]


@dataclass(frozen=True)
class Change:
    rv: int
    key: str
    old: dict[str, Any] | None  # stored shape; None when created
    new: dict[str, Any]  # stored shape; on delete, the object with the deleting resourceVersion
    deleted: bool = False


class Watch:
    """One open watch: its filter and the queue its HTTP stream drains (None ends it)."""

    def __init__(self, res: Resource, namespace: str | None, match: Matcher, view: View) -> None:
        self.res = res
        self.namespace = namespace
        self.match = match
        self._view = view
        self.events: queue.Queue[tuple[str, dict[str, Any]] | None] = queue.Queue()

    def _sees(self, obj: dict[str, Any] | None) -> bool:
        if obj is None:
            return False
        if self.namespace is not None and obj["metadata"].get("namespace") != self.namespace:
            return False
        return self.match(self._view(self.res, obj))

    def offer(self, change: Change) -> None:
        if change.key != self.res.key:
            return
        was = self._sees(change.old)
        now = not change.deleted and self._sees(change.new)
        if change.deleted:
            kind = "DELETED" if was else ""
        elif was and now:
            kind = "MODIFIED"
        elif now:
            kind = "ADDED"
        else:
            kind = "DELETED" if was else ""
        if kind:
            self.events.put((kind, self._view(self.res, change.new)))

    def close(self) -> None:
        self.events.put(None)


class Hub:
    """The change history and the open watches. Callers hold the store's lock."""

    def __init__(self, history: int = HISTORY) -> None:
        self.history: deque[Change] = deque(maxlen=history)
        self.watches: list[Watch] = []

    def publish(self, change: Change) -> None:
        self.history.append(change)
        for w in self.watches:
            w.offer(change)

    def replay(self, watch: Watch, since: int) -> None:
        """Queue the changes after ``since`` for a watch resuming there, or refuse if too old."""
        if (
            self.history
            and len(self.history) == self.history.maxlen
            and since < self.history[0].rv - 1
        ):
            raise ApiError(
                410, "Expired", f"too old resource version: {since} ({self.history[0].rv - 1})"
            )
        for change in self.history:
            if change.rv > since:
                watch.offer(change)

    def close_all(self) -> None:
        for w in self.watches:
            w.close()
        self.watches.clear()
