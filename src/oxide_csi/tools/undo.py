"""What ``oxide-csi demo`` has to take down again, newest first, whatever happens.

Why a stack keyed by name: every step that makes something (a volume, an attachment, a mount,
a directory) pushes the action that takes it down *before* it calls the plugin when the call
is safe to undo blindly (CSI's unpublish, unstage and detach are idempotent: undoing what never
happened succeeds), and right after it otherwise (a delete needs the id the create returns). The
demo's own tear-down steps run these same actions by name, so the normal path and the clean-up
after a failure or Ctrl-C share one piece of code; whatever is left when the demo stops is
unwound in reverse order, each action on its own, one failure not stopping the rest.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Action:
    key: str
    label: str
    run: Callable[[], None]


class UndoStack:
    """Safe to use from several threads (the demo detaches two volumes at once)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._actions: list[Action] = []

    def push(self, key: str, label: str, run: Callable[[], None]) -> None:
        with self._lock:
            self._actions.append(Action(key, label, run))

    def run(self, key: str) -> None:
        """Run the action ``key`` now; it stays on the stack if it fails, so the clean-up
        tries it again."""
        with self._lock:
            action = next(a for a in self._actions if a.key == key)
        action.run()
        self.discard(action)

    def pending(self) -> list[Action]:
        """What is still to undo, in the order it must run (newest first)."""
        with self._lock:
            return list(reversed(self._actions))

    def discard(self, action: Action) -> None:
        with self._lock:
            self._actions.remove(action)
