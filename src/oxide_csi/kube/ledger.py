"""Released-disk ledgers as ConfigMaps: one per instance with released disks, in our namespace.

Why ConfigMaps, like the attach record (``records.py``): a ledger must outlive the controller
and follow it to another node, and days may pass before the instance's next cycle. Unlike the
record, a ledger is written outside cycles too (ControllerUnpublishVolume adds an entry, a
publish back removes it, DeleteVolume marks a deletion owed), possibly by two controllers at
once; so every write is a read-modify-write conditional on the resourceVersion just read, and
a conflict (409) means: read again and apply the same change to what is there now. The entries
a cycle takes carry a mark written the same way, which a publish back on another controller
sees (``ledger.py``).

A ledger that becomes empty stays as an empty ConfigMap: lightkube cannot make a delete
conditional on the version read, and an unconditional one could drop an entry added meanwhile.
"""

from __future__ import annotations

import json
from typing import Any

import structlog
from lightkube import ApiError, AsyncClient
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap

from oxide_csi.controller.attach.ledger import Ledger, LedgerChange
from oxide_csi.controller.attach.records import RecordError
from oxide_csi.kube.records import (
    INSTANCE_LABEL,
    KIND_LABEL,
    MANAGED_BY,
    TRANSPORT_ERRORS,
    RecordConflict,
    api_failure,
)

log = structlog.get_logger(__name__)

PREFIX = "oxide-csi-released-"
DATA_KEY = "ledger.json"
KIND_VALUE = "released-disks"
#: Conflicting writers are rare (two controllers touching one instance's ledger at once); a
#: few rereads settle them, and more means something rewrites it in a loop.
_ATTEMPTS = 8


def ledger_name(instance_id: str) -> str:
    return PREFIX + instance_id


class KubeLedgerStore:
    """:class:`~oxide_csi.controller.attach.ledger.LedgerStore` on ConfigMaps."""

    def __init__(self, client: AsyncClient, namespace: str) -> None:
        self._client = client
        self._ns = namespace

    def __repr__(self) -> str:
        return f"KubeLedgerStore(namespace={self._ns!r})"

    async def load(self, instance_id: str) -> Ledger | None:
        found = await self._get(instance_id)
        return _parse(found) if found is not None else None

    async def update(self, instance_id: str, instance_name: str, change: LedgerChange) -> Ledger:
        for _ in range(_ATTEMPTS):
            current_cm = await self._get(instance_id)
            current = _parse(current_cm) if current_cm is not None else None
            if current_cm is not None and current is None:
                raise RecordConflict(
                    f"the ledger of instance {instance_id} cannot be read; an operator must fix "
                    f"or delete ConfigMap {ledger_name(instance_id)}"
                )
            new = change(current or Ledger(instance_id, instance_name))
            if new == current or (current is None and not new.disks):
                return new
            if await self._write(instance_id, current_cm, new):
                return new
        raise RecordConflict(f"the ledger of instance {instance_id} keeps changing; retry")

    async def load_all(self) -> list[Ledger]:
        found = []
        try:
            async for cm in self._client.list(
                ConfigMap, namespace=self._ns, labels={KIND_LABEL: KIND_VALUE}
            ):
                ledger = _parse(cm)
                if ledger is not None:
                    found.append(ledger)
        except (ApiError, *TRANSPORT_ERRORS) as exc:
            raise api_failure(exc, "list the released-disk ledgers") from exc
        return found

    async def _get(self, instance_id: str) -> ConfigMap | None:
        what = f"read the released-disk ledger of instance {instance_id}"
        try:
            return await self._client.get(ConfigMap, ledger_name(instance_id), namespace=self._ns)
        except ApiError as exc:
            if exc.status.code == 404:
                return None
            raise api_failure(exc, what) from exc
        except TRANSPORT_ERRORS as exc:
            raise api_failure(exc, what) from exc

    async def _write(self, instance_id: str, current: ConfigMap | None, new: Ledger) -> bool:
        """Write ``new`` over ``current`` (as read); False on a conflict (read again)."""
        what = f"write the released-disk ledger of instance {instance_id}"
        version = current.metadata.resourceVersion if current and current.metadata else None
        try:
            if current is None:
                await self._client.create(self._object(new, None))
            else:
                await self._client.replace(self._object(new, version))
        except ApiError as exc:
            if exc.status.code in (404, 409):
                return False
            raise api_failure(exc, what) from exc
        except TRANSPORT_ERRORS as exc:
            raise api_failure(exc, what) from exc
        return True

    def _object(self, ledger: Ledger, version: str | None) -> ConfigMap:
        return ConfigMap(
            metadata=ObjectMeta(
                name=ledger_name(ledger.instance_id),
                namespace=self._ns,
                resourceVersion=version,
                labels={
                    KIND_LABEL: KIND_VALUE,
                    INSTANCE_LABEL: ledger.instance_id,
                    **MANAGED_BY,
                },
            ),
            data={DATA_KEY: json.dumps(ledger.to_json(), indent=2, sort_keys=True)},
        )


def _parse(cm: ConfigMap) -> Ledger | None:
    name = cm.metadata.name if cm.metadata is not None else "?"
    raw: Any = (cm.data or {}).get(DATA_KEY)
    try:
        return Ledger.from_json(json.loads(raw) if isinstance(raw, str) else None)
    except (ValueError, RecordError) as exc:
        log.error("unreadable released-disk ledger", configmap=name, error=str(exc))
        return None
