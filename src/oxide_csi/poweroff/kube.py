"""The power-off channel through Kubernetes: a heartbeat Lease per node, a ConfigMap per request.

Both live in the plugin's namespace:

* ``oxide-csi-node-<instance>``: a Lease the node plugin on that instance renews (holder: its
  pod), with the identity a request must name in annotations (the host's boot id, the plugin's
  start). Live until ``renewTime + leaseDurationSeconds``, as kubelet's own node Leases.
* ``oxide-csi-poweroff-<instance>``: a ConfigMap labelled with the instance it is for, holding
  the request. The node watches only ConfigMaps with its own instance's label, so the
  controller's other state never reaches it (and the watch costs nothing between requests).

This module is the controller's side, on lightkube with the client the controller already
has; the node's side (its heartbeat and its watch) is ``node_kube.py``, on the node's small
client: a node plugin must not pay lightkube's HTTP stack (``bench/node_memory.py``). The
objects' names and keys are in ``names.py``, shared by both.
"""

from __future__ import annotations

import json

import httpx2
import structlog
from lightkube import ApiError, AsyncClient
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import ConfigMap

from oxide_csi.poweroff.messages import Heartbeat, MessageError, PowerOffRequest
from oxide_csi.poweroff.names import (
    BOOT_ANNOTATION,
    DATA_KEY,
    FOR_LABEL,
    HEARTBEAT_PREFIX,
    KIND_LABEL,
    MANAGED_BY,
    REQUEST_PREFIX,
    STARTED_ANNOTATION,
)

log = structlog.get_logger(__name__)

#: What a call may raise besides ApiError: transport trouble, timeouts.
_TRANSPORT = (httpx2.HTTPError, TimeoutError, OSError)


class KubeChannel:
    """The controller's side of the channel in ``namespace``, on the controller's client."""

    def __init__(self, client: AsyncClient, namespace: str) -> None:
        self._client = client
        self._ns = namespace

    # ---- controller ----------------------------------------------------------------------

    async def heartbeat(self, instance_id: str) -> Heartbeat | None:
        lease = await self._get(Lease, HEARTBEAT_PREFIX + instance_id)
        if not isinstance(lease, Lease):
            return None
        try:
            return _heartbeat_of(instance_id, lease)
        except MessageError as exc:
            log.warning("unreadable heartbeat Lease", instance=instance_id, error=str(exc))
            return None

    async def send(self, request: PowerOffRequest) -> None:
        name = REQUEST_PREFIX + request.instance_id
        cm = ConfigMap(
            metadata=ObjectMeta(
                name=name,
                namespace=self._ns,
                labels={FOR_LABEL: request.instance_id, KIND_LABEL: "power-off", **MANAGED_BY},
            ),
            data={DATA_KEY: json.dumps(request.to_json(), sort_keys=True)},
        )
        try:
            await self._client.create(cm)
        except ApiError as exc:
            if exc.status.code != 409:
                raise
            await self._client.replace(cm)  # an older one (expired, or ours from a failed try)

    async def withdraw(self, request: PowerOffRequest) -> None:
        name = REQUEST_PREFIX + request.instance_id
        cm = await self._get(ConfigMap, name)
        stored = _request_of(cm) if isinstance(cm, ConfigMap) else None
        if stored is not None and stored.id == request.id:
            await self._delete(name)

    async def sweep(self, now: float) -> int:
        removed = 0
        async for cm in self._client.list(
            ConfigMap, namespace=self._ns, labels={KIND_LABEL: "power-off"}
        ):
            request = _request_of(cm)
            if (request is None or request.expires <= now) and cm.metadata and cm.metadata.name:
                await self._delete(cm.metadata.name)
                removed += 1
        return removed

    # ---- helpers -------------------------------------------------------------------------

    async def _get(self, res: type[Lease] | type[ConfigMap], name: str) -> Lease | ConfigMap | None:
        try:
            return await self._client.get(res, name, namespace=self._ns)
        except ApiError as exc:
            if exc.status.code == 404:
                return None
            raise

    async def _delete(self, name: str) -> None:
        try:
            await self._client.delete(ConfigMap, name, namespace=self._ns)
        except ApiError as exc:
            if exc.status.code != 404:
                raise


def _heartbeat_of(instance_id: str, lease: Lease) -> Heartbeat:
    meta, spec = lease.metadata, lease.spec
    notes = (meta.annotations if meta is not None else None) or {}
    if spec is None or spec.renewTime is None:
        raise MessageError("the Lease has no renewTime")
    return Heartbeat.from_json(
        {
            "instance_id": instance_id,
            "boot_id": notes.get(BOOT_ANNOTATION),
            "started": notes.get(STARTED_ANNOTATION),
            "renewed": spec.renewTime.timestamp(),
            "duration": spec.leaseDurationSeconds or 0,
        }
    )


def _request_of(cm: ConfigMap) -> PowerOffRequest | None:
    raw = (cm.data or {}).get(DATA_KEY)
    try:
        return PowerOffRequest.from_json(json.loads(raw or ""))
    except (ValueError, MessageError):
        return None
