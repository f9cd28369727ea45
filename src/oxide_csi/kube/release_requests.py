"""Release requests (``oxide-csi release-instance``) as ConfigMaps in the controller's namespace.

One ConfigMap per request, labelled so the controller lists only those; the tool creates it,
the controller writes its answer into it, the tool deletes it. Written with the version read
(a conflict means another controller answered first: its answer stands).
"""

from __future__ import annotations

import json

import structlog
from lightkube import ApiError, AsyncClient
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap

from oxide_csi.controller.attach.records import RecordError
from oxide_csi.controller.attach.release_requests import ReleaseRequest
from oxide_csi.kube.records import KIND_LABEL, MANAGED_BY, TRANSPORT_ERRORS, api_failure

log = structlog.get_logger(__name__)

PREFIX = "oxide-csi-release-"
DATA_KEY = "request.json"
KIND_VALUE = "release-request"


class KubeReleaseRequests:
    """:class:`~oxide_csi.controller.attach.release_requests.ReleaseRequestStore` on
    ConfigMaps."""

    def __init__(self, client: AsyncClient, namespace: str) -> None:
        self._client = client
        self._ns = namespace

    async def put(self, request: ReleaseRequest) -> None:
        current = await self._get(request.id)
        version = current.metadata.resourceVersion if current and current.metadata else None
        cm = ConfigMap(
            metadata=ObjectMeta(
                name=PREFIX + request.id,
                namespace=self._ns,
                resourceVersion=version,
                labels={KIND_LABEL: KIND_VALUE, **MANAGED_BY},
            ),
            data={DATA_KEY: json.dumps(request.to_json(), indent=2)},
        )
        try:
            if current is None:
                await self._client.create(cm)
            else:
                await self._client.replace(cm)
        except ApiError as exc:
            if exc.status.code == 409:
                return  # answered by another controller meanwhile
            raise api_failure(exc, "write a release request") from exc
        except TRANSPORT_ERRORS as exc:
            raise api_failure(exc, "write a release request") from exc

    async def get(self, request_id: str) -> ReleaseRequest | None:
        found = await self._get(request_id)
        return _parse(found) if found is not None else None

    async def pending(self) -> list[ReleaseRequest]:
        found = []
        try:
            async for cm in self._client.list(
                ConfigMap, namespace=self._ns, labels={KIND_LABEL: KIND_VALUE}
            ):
                request = _parse(cm)
                if request is not None and request.done is None:
                    found.append(request)
        except (ApiError, *TRANSPORT_ERRORS) as exc:
            raise api_failure(exc, "list the release requests") from exc
        return found

    async def delete(self, request_id: str) -> None:
        try:
            await self._client.delete(ConfigMap, PREFIX + request_id, namespace=self._ns)
        except ApiError as exc:
            if exc.status.code != 404:
                raise api_failure(exc, "delete a release request") from exc
        except TRANSPORT_ERRORS as exc:
            raise api_failure(exc, "delete a release request") from exc

    async def _get(self, request_id: str) -> ConfigMap | None:
        try:
            return await self._client.get(ConfigMap, PREFIX + request_id, namespace=self._ns)
        except ApiError as exc:
            if exc.status.code == 404:
                return None
            raise api_failure(exc, "read a release request") from exc
        except TRANSPORT_ERRORS as exc:
            raise api_failure(exc, "read a release request") from exc


def _parse(cm: ConfigMap) -> ReleaseRequest | None:
    raw = (cm.data or {}).get(DATA_KEY)
    try:
        return ReleaseRequest.from_json(json.loads(raw) if isinstance(raw, str) else None)
    except (ValueError, RecordError) as exc:
        name = cm.metadata.name if cm.metadata is not None else "?"
        log.error("unreadable release request", configmap=name, error=str(exc))
        return None
