"""A read-only look at the Oxide API for ``oxide-csi demo``: the node's instance and disks.

Why the demo looks at Oxide at all: on Oxide an attach stops and starts the node's instance,
and that is the one thing a newcomer must see happen. CSI does not show it, so when the demo has
Oxide credentials (``oxide-csi dev`` leaves them in ``STATE/oxide.env``; an operator may have
``OXIDE_*`` in the environment) it polls the instance while a step runs and reports each run
state as it comes. Without credentials it shows only how long the step took. It also tells a
disk that is gone from one the plugin is still to delete at the instance's next cycle.

It only ever reads (GET), with plain httpx rather than the plugin's Oxide client, whose
retries, waiters and metrics are for the controller's writes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from oxide_csi.config_common import DEFAULT_API_VERSION
from oxide_csi.oxide import is_uuid

POLL_SECONDS = 0.05


@dataclass(frozen=True)
class OxideAccess:
    host: str
    token: str
    project: str


class OxideView:
    def __init__(self, access: OxideAccess) -> None:
        self._project = access.project
        self._http = httpx.Client(
            base_url=access.host,
            headers={"Authorization": f"Bearer {access.token}", "api-version": DEFAULT_API_VERSION},
            timeout=10,
        )

    def close(self) -> None:
        self._http.close()

    def _get(self, path: str, selector: str) -> dict[str, Any] | None:
        """The object at ``path``, None when Oxide says 404; other failures raise."""
        params = {} if is_uuid(selector) else {"project": self._project}
        response = self._http.get(path, params=params)
        if response.status_code == 404:
            return None
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def instance(self, selector: str) -> dict[str, Any] | None:
        return self._get(f"/v1/instances/{selector}", selector)

    def disk(self, disk_id: str) -> dict[str, Any] | None:
        return self._get(f"/v1/disks/{disk_id}", disk_id)

    def snapshot(self, snapshot_id: str) -> dict[str, Any] | None:
        return self._get(f"/v1/snapshots/{snapshot_id}", snapshot_id)


class InstanceWatch:
    """Polls one instance's ``run_state`` in a thread; calls ``on_change`` for each new one.

    Polling, not waiting for an event: Oxide has no event stream. A state held for less than
    the poll interval may be missed; the record then shows the states seen, never invented.
    """

    def __init__(
        self, view: OxideView, instance: str, on_change: Callable[[str, str], None]
    ) -> None:
        self._view = view
        self._instance = instance
        self._on_change = on_change
        self.states: list[tuple[float, str]] = []
        self.name = instance
        self.error: str | None = None
        self._stop = threading.Event()
        self._back_up = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-watch", daemon=True)

    def __enter__(self) -> InstanceWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while True:
            try:
                found = self._view.instance(self._instance)
            except (httpx.HTTPError, ValueError) as exc:
                self.error = f"cannot watch the instance: {exc}"
                return
            if found is not None:
                self.name = str(found.get("name", self._instance))
                state = str(found.get("run_state"))
                if not self.states or self.states[-1][1] != state:
                    self.states.append((time.monotonic(), state))
                    self._on_change(self.name, state)
                if state == "running" and any(s != "running" for _, s in self.states):
                    self._back_up.set()
            if self._stop.wait(POLL_SECONDS):
                return

    def settle(self, timeout: float) -> None:
        """If the instance was seen down, wait (at most ``timeout``) until it runs again: a
        publish may answer once the start is under way, and the start is part of the story."""
        if any(s != "running" for _, s in self.states) and self.error is None:
            self._back_up.wait(timeout)

    def story(self) -> str:
        """What was seen, e.g. ``instance-0 running → stopping → stopped → starting → running,
        down 0.61 s``; the downtime runs from the first state other than running to the next
        running."""
        if self.error:
            return self.error
        if not self.states:
            return f"instance {self.name} not seen"
        path = " → ".join(state for _, state in self.states)
        down_at = next((t for t, s in self.states if s != "running"), None)
        up_at = next(
            (t for t, s in self.states if s == "running" and down_at and t > down_at), None
        )
        if down_at is None:
            return f"{self.name} stayed {path} (no stop)"
        if up_at is None:
            return f"{self.name} {path}"
        return f"{self.name} {path}, down {up_at - down_at:.2f} s"
