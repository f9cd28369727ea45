"""The node's side of the power-off channel through Kubernetes, on the node's small client.

The same objects as :mod:`oxide_csi.poweroff.kube` (which the controller uses through
lightkube): the node's heartbeat Lease ``oxide-csi-node-<instance>``, written by this node only,
and the request ConfigMaps labelled with its instance, which it watches. Apart from it because a
node plugin must not pay lightkube's HTTP stack on every node (see
:mod:`oxide_csi.kube.lean_client` and ``bench/node_memory.py``).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from oxide_csi.kube.lean_client import LeanApiError, LeanClient
from oxide_csi.poweroff.messages import Heartbeat, MessageError, PowerOffRequest
from oxide_csi.poweroff.names import (
    BOOT_ANNOTATION,
    DATA_KEY,
    FOR_LABEL,
    HEARTBEAT_PREFIX,
    KIND_LABEL,
    MANAGED_BY,
    STARTED_ANNOTATION,
)

#: Seconds the API server keeps one watch open before the node opens the next.
WATCH_SECONDS = 300


class LeanNodeChannel:
    """:class:`~oxide_csi.poweroff.messages.NodeChannel` in ``namespace``."""

    def __init__(self, client: LeanClient, namespace: str) -> None:
        self._client = client
        self._leases = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
        self._configmaps = f"/api/v1/namespaces/{namespace}/configmaps"
        self._ns = namespace
        self._lease_version: str | None = None

    async def beat(self, heartbeat: Heartbeat) -> None:
        name = HEARTBEAT_PREFIX + heartbeat.instance_id
        lease = self._lease(name, heartbeat)
        try:
            if self._lease_version is None:
                try:
                    written = await self._client.call("POST", self._leases, lease)
                except LeanApiError as exc:
                    if exc.status != 409:
                        raise
                    # a previous process of this node left it: the heartbeat is ours
                    current = await self._client.call("GET", f"{self._leases}/{name}")
                    lease["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                    written = await self._client.call("PUT", f"{self._leases}/{name}", lease)
            else:
                lease["metadata"]["resourceVersion"] = self._lease_version
                written = await self._client.call("PUT", f"{self._leases}/{name}", lease)
        except LeanApiError as exc:
            if exc.status in (404, 409):
                self._lease_version = None  # changed or removed by someone: write anew
            raise
        self._lease_version = written["metadata"]["resourceVersion"]

    async def requests(self, instance_id: str) -> AsyncIterator[PowerOffRequest]:
        """This instance's requests: those listed, then those the watch brings. A watch the
        server ends is reopened from where it was; one it refuses (410) ends this iterator,
        and the caller's next call lists afresh."""
        selector = quote(f"{FOR_LABEL}={instance_id}")
        listed = await self._client.call("GET", f"{self._configmaps}?labelSelector={selector}")
        for cm in listed.get("items") or []:
            request = _request_of(cm)
            if request is not None:
                yield request
        version = listed["metadata"]["resourceVersion"]
        while True:
            path = (
                f"{self._configmaps}?watch=1&labelSelector={selector}"
                f"&resourceVersion={version}&timeoutSeconds={WATCH_SECONDS}"
            )
            async for event in self._client.stream(path, idle=WATCH_SECONDS + 30):
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    raise LeanApiError(int(obj.get("code", 0)), str(obj.get("reason", "")), "")
                version = (obj.get("metadata") or {}).get("resourceVersion", version)
                if kind in ("ADDED", "MODIFIED"):
                    request = _request_of(obj)
                    if request is not None:
                        yield request

    async def close(self) -> None:
        return None  # one connection per call: nothing stays open

    def _lease(self, name: str, heartbeat: Heartbeat) -> dict[str, Any]:
        now = _micro(heartbeat.renewed)
        return {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": name,
                "namespace": self._ns,
                "labels": {KIND_LABEL: "node-heartbeat", **MANAGED_BY},
                "annotations": {
                    BOOT_ANNOTATION: heartbeat.boot_id,
                    STARTED_ANNOTATION: repr(heartbeat.started),
                },
            },
            "spec": {
                "holderIdentity": f"{heartbeat.instance_id}/{heartbeat.boot_id}",
                "leaseDurationSeconds": max(1, round(heartbeat.duration)),
                "renewTime": now,
                "acquireTime": now,
            },
        }


def _request_of(cm: dict[str, Any]) -> PowerOffRequest | None:
    raw = (cm.get("data") or {}).get(DATA_KEY)
    try:
        return PowerOffRequest.from_json(json.loads(raw or ""))
    except (ValueError, MessageError):
        return None


def _micro(epoch: float) -> str:
    """A MicroTime with its fraction always written (the API server refuses one without)."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
