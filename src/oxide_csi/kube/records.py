"""Attach records as ConfigMaps: one per instance, in the controller's namespace.

Why ConfigMaps and not the Lease: the record says what we owe an instance (a start, the
operations of the cycle in flight) and must outlive any lock. A Lease says only who may act
now and expires by design; a record must never expire. Keeping them apart also lets a later
issue keep longer-lived state (a released disk waiting for the next cycle) beside it.

Optimistic concurrency: each write carries the resourceVersion this process last read or wrote
for that instance, so a write over someone else's change is refused (409) instead of silently
winning. Only the Lease holder writes, so a conflict means the fence broke or a record was
edited by hand; either way the cycle stops before the instance is touched.

Store failures are ``OSError`` (:class:`StoreUnavailable`), as for the file store: the
coordinator treats them as "the record could not be written, nothing was stopped".
"""

from __future__ import annotations

import json
from typing import Any

import httpx2
import structlog
from lightkube import ApiError, AsyncClient
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap

from oxide_csi import errors
from oxide_csi.controller.attach.records import AttachRecord, RecordError

log = structlog.get_logger(__name__)

PREFIX = "oxide-csi-attach-"
DATA_KEY = "record.json"
#: Labels that find our records (list) and tell a human what they are.
KIND_LABEL = "csi.oxide.computer/state"
KIND_VALUE = "attach-record"
INSTANCE_LABEL = "csi.oxide.computer/instance"
MANAGED_BY = {"app.kubernetes.io/managed-by": "oxide-csi"}


class StoreUnavailable(OSError):
    """The Kubernetes API did not take or give a record (unreachable, refused, timed out)."""


class RecordConflict(errors.Aborted):
    """Someone else changed the record since we read it: stop, reread, retry."""


def record_name(instance_id: str) -> str:
    return PREFIX + instance_id


def api_failure(exc: Exception, what: str) -> StoreUnavailable:
    if isinstance(exc, ApiError):
        return StoreUnavailable(f"{what}: {exc.status.code} {exc.status.reason}: {exc}")
    return StoreUnavailable(f"{what}: {type(exc).__name__}: {exc}")


#: What a call to the API may raise besides ApiError: transport trouble, our own timeouts.
TRANSPORT_ERRORS = (httpx2.HTTPError, TimeoutError, OSError)


async def get_configmap(
    client: AsyncClient, namespace: str, name: str, what: str
) -> ConfigMap | None:
    """One of our state ConfigMaps, None when there is none; :class:`StoreUnavailable` else."""
    try:
        return await client.get(ConfigMap, name, namespace=namespace)
    except ApiError as exc:
        if exc.status.code == 404:
            return None
        raise api_failure(exc, what) from exc
    except TRANSPORT_ERRORS as exc:
        raise api_failure(exc, what) from exc


async def list_configmaps(
    client: AsyncClient, namespace: str, kind: str, what: str
) -> list[ConfigMap]:
    """Our state ConfigMaps of one ``kind`` (the value of :data:`KIND_LABEL`)."""
    try:
        return [
            cm
            async for cm in client.list(ConfigMap, namespace=namespace, labels={KIND_LABEL: kind})
        ]
    except (ApiError, *TRANSPORT_ERRORS) as exc:
        raise api_failure(exc, what) from exc


class KubeAttachRecordStore:
    """:class:`~oxide_csi.controller.attach.records.AttachRecordStore` on ConfigMaps."""

    def __init__(self, client: AsyncClient, namespace: str) -> None:
        self._client = client
        self._ns = namespace
        #: instance id -> resourceVersion we last read or wrote; None: we saw none exist.
        self._versions: dict[str, str | None] = {}

    def __repr__(self) -> str:
        return f"KubeAttachRecordStore(namespace={self._ns!r})"

    async def load(self, instance_id: str) -> AttachRecord | None:
        what = f"read the attach record of instance {instance_id}"
        try:
            cm = await self._client.get(ConfigMap, record_name(instance_id), namespace=self._ns)
        except ApiError as exc:
            if exc.status.code == 404:
                self._versions[instance_id] = None
                return None
            raise api_failure(exc, what) from exc
        except TRANSPORT_ERRORS as exc:
            raise api_failure(exc, what) from exc
        assert cm.metadata is not None
        self._versions[instance_id] = cm.metadata.resourceVersion
        return _parse(cm)

    async def save(self, record: AttachRecord) -> None:
        iid = record.instance_id
        if iid not in self._versions:
            await self.load(iid)
        version = self._versions[iid]
        cm = ConfigMap(
            metadata=ObjectMeta(
                name=record_name(iid),
                namespace=self._ns,
                resourceVersion=version,
                labels={KIND_LABEL: KIND_VALUE, INSTANCE_LABEL: iid, **MANAGED_BY},
            ),
            data={DATA_KEY: json.dumps(record.to_json(), indent=2, sort_keys=True)},
        )
        what = f"write the attach record of instance {iid}"
        try:
            if version is None:
                written = await self._client.create(cm)
            else:
                written = await self._client.replace(cm)
        except ApiError as exc:
            if exc.status.code in (404, 409):
                self._versions.pop(iid, None)  # reread before the next write
                raise RecordConflict(
                    f"the attach record of instance {iid} was changed by someone else; retry"
                ) from exc
            raise api_failure(exc, what) from exc
        except TRANSPORT_ERRORS as exc:
            self._versions.pop(iid, None)  # the write may or may not have landed
            raise api_failure(exc, what) from exc
        assert written.metadata is not None
        self._versions[iid] = written.metadata.resourceVersion

    async def delete(self, instance_id: str) -> None:
        what = f"delete the attach record of instance {instance_id}"
        try:
            await self._client.delete(ConfigMap, record_name(instance_id), namespace=self._ns)
        except ApiError as exc:
            if exc.status.code != 404:
                raise api_failure(exc, what) from exc
        except TRANSPORT_ERRORS as exc:
            self._versions.pop(instance_id, None)
            raise api_failure(exc, what) from exc
        self._versions[instance_id] = None

    async def load_all(self) -> list[AttachRecord]:
        """Every readable record. It does not touch the versions :meth:`save` writes against:
        a recovery pass must not make a concurrent cycle's stale read look fresh."""
        found = await list_configmaps(self._client, self._ns, KIND_VALUE, "list the attach records")
        return [record for record in map(_parse, found) if record is not None]


def _parse(cm: ConfigMap) -> AttachRecord | None:
    name = cm.metadata.name if cm.metadata is not None else "?"
    raw: Any = (cm.data or {}).get(DATA_KEY)
    try:
        return AttachRecord.from_json(json.loads(raw) if isinstance(raw, str) else None)
    except (ValueError, RecordError) as exc:
        # Keep it for an operator; recovery cannot act on what it cannot read.
        log.error("unreadable attach record", configmap=name, error=str(exc))
        return None
