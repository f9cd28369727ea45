"""Atomic persistence of the simulator state in ``state_dir/state.json``.

Written after every mutation (while the engine holds its lock) via write-to-temp, fsync and
``os.replace`` so a crash or SIGKILL leaves either the old or the new file, never a torn one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

from oxide_sim.model import State

STATE_FILE = "state.json"


class StateFile:
    def __init__(self, state_dir: Path) -> None:
        self.dir = Path(state_dir)
        self.path = self.dir / STATE_FILE

    def load(self) -> State | None:
        try:
            raw = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        return State.from_json(json.loads(raw))

    def save(self, state: State) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        data = json.dumps(state.to_json(), indent=1, sort_keys=True)
        fd, tmp = tempfile.mkstemp(prefix=".state-", suffix=".tmp", dir=self.dir)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        try:
            dfd = os.open(self.dir, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
