"""The power-off channel through Kubernetes: a heartbeat Lease per node, a ConfigMap per request.

Both live in the plugin's namespace:

* ``oxide-csi-node-<instance>``: a Lease the node plugin on that instance renews (holder: its
  pod), with the identity a request must name in annotations (the host's boot id, the plugin's
  start). Live until ``renewTime + leaseDurationSeconds``, as kubelet's own node Leases.
* ``oxide-csi-poweroff-<instance>``: a ConfigMap labelled with the instance it is for, holding
  the request. The node watches only ConfigMaps with its own instance's label, so the
  controller's other state never reaches it (and the watch costs nothing between requests).

Kept lean for the node (``bench/node_memory.py``): lightkube's async client and its two
resource modules, nothing of the controller. The controller uses the same class (``own=False``)
with the client it already has.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx2
import structlog
from lightkube import ApiError, AsyncClient
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease
from lightkube.resources.core_v1 import ConfigMap

from oxide_csi.poweroff.messages import Heartbeat, MessageError, PowerOffRequest

log = structlog.get_logger(__name__)

HEARTBEAT_PREFIX = "oxide-csi-node-"
REQUEST_PREFIX = "oxide-csi-poweroff-"
#: The label that finds the requests for one instance (the node's watch selects on it).
FOR_LABEL = "csi.oxide.computer/power-off-for"
KIND_LABEL = "csi.oxide.computer/state"
BOOT_ANNOTATION = "csi.oxide.computer/boot-id"
STARTED_ANNOTATION = "csi.oxide.computer/node-started"
DATA_KEY = "request.json"
MANAGED_BY = {"app.kubernetes.io/managed-by": "oxide-csi"}
#: What a call may raise besides ApiError: transport trouble, timeouts.
_TRANSPORT = (httpx2.HTTPError, TimeoutError, OSError)


class KubeChannel:
    """Both sides of the channel in ``namespace``; ``own``: this process made the client and
    closes it with the channel (the node), else the caller does (the controller)."""

    def __init__(self, client: AsyncClient, namespace: str, *, own: bool = False) -> None:
        self._client = client
        self._ns = namespace
        self._own = own
        self._lease_version: str | None = None

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

    # ---- node ----------------------------------------------------------------------------

    async def beat(self, heartbeat: Heartbeat) -> None:
        name = HEARTBEAT_PREFIX + heartbeat.instance_id
        now = _micro(heartbeat.renewed)
        lease = Lease(
            metadata=ObjectMeta(
                name=name,
                namespace=self._ns,
                labels={KIND_LABEL: "node-heartbeat", **MANAGED_BY},
                annotations={
                    BOOT_ANNOTATION: heartbeat.boot_id,
                    STARTED_ANNOTATION: repr(heartbeat.started),
                },
                resourceVersion=self._lease_version,
            ),
            spec=LeaseSpec(
                holderIdentity=f"{heartbeat.instance_id}/{heartbeat.boot_id}",
                leaseDurationSeconds=max(1, round(heartbeat.duration)),
                renewTime=now,
                acquireTime=now,
            ),
        )
        try:
            if self._lease_version is None:
                try:
                    written = await self._client.create(lease)
                except ApiError as exc:
                    if exc.status.code != 409:
                        raise
                    written = await self._replace_current(lease)
            else:
                written = await self._client.replace(lease)
        except ApiError as exc:
            if exc.status.code not in (404, 409):
                raise
            self._lease_version = None  # changed or removed by someone: write anew next time
            raise
        self._lease_version = written.metadata.resourceVersion if written.metadata else None

    async def requests(self, instance_id: str) -> AsyncIterator[PowerOffRequest]:
        """Watch this instance's request ConfigMaps (the list first, then the changes)."""
        async for kind, cm in self._client.watch(
            ConfigMap, namespace=self._ns, labels={FOR_LABEL: instance_id}
        ):
            if kind == "DELETED":
                continue
            request = _request_of(cm)
            if request is not None:
                yield request

    async def close(self) -> None:
        if self._own:
            await self._client.close()

    # ---- helpers -------------------------------------------------------------------------

    async def _replace_current(self, lease: Lease) -> Lease:
        """Take over the Lease a previous process of this node left (its version is new to
        us): the heartbeat is the node's own, whoever wrote it last."""
        assert lease.metadata is not None and lease.metadata.name is not None
        current = await self._client.get(Lease, lease.metadata.name, namespace=self._ns)
        lease.metadata.resourceVersion = (
            current.metadata.resourceVersion if current.metadata else None
        )
        return await self._client.replace(lease)

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


def _micro(epoch: float) -> datetime:
    """A MicroTime the API server accepts: lightkube drops a zero fraction, which a MicroTime
    field refuses, so a whole second becomes one microsecond later (the same instant here)."""
    stamp = datetime.fromtimestamp(epoch, UTC)
    return stamp.replace(microsecond=1) if stamp.microsecond == 0 else stamp
