"""Everything the Kubernetes backend adds to a controller, opened in the right order.

The one module ``app.py`` calls for this backend: the API client, the record store on
ConfigMaps, the import of records an earlier file-backed controller left (before anything
else), the Lease fence, the Node gate and the Event writer.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

from lightkube import AsyncClient

from oxide_csi.kube.client import kube_client
from oxide_csi.kube.events import EventRecorder
from oxide_csi.kube.leases import LeaseFence
from oxide_csi.kube.ledger import KubeLedgerStore
from oxide_csi.kube.migrate import import_file_records
from oxide_csi.kube.nodes import NodeGate
from oxide_csi.kube.records import KubeAttachRecordStore
from oxide_csi.kube.release_requests import KubeReleaseRequests
from oxide_csi.kube.settings import KubeSettings


@dataclass(frozen=True)
class KubeParts:
    client: AsyncClient
    settings: KubeSettings
    store: KubeAttachRecordStore
    fence: LeaseFence
    gate: NodeGate
    events: EventRecorder
    ledger: KubeLedgerStore
    requests: KubeReleaseRequests


async def open_kube(
    settings: KubeSettings, legacy_state_dir: Path, resources: AsyncExitStack
) -> KubeParts:
    """Open the backend; closing ``resources`` closes it. Records under ``legacy_state_dir``
    (the file backend's ``attach`` directory) are imported first."""
    client = kube_client(settings)
    resources.push_async_callback(client.close)
    store = KubeAttachRecordStore(client, settings.namespace)
    await import_file_records(legacy_state_dir, store)
    events = EventRecorder(client, settings.identity)
    events.start()
    resources.push_async_callback(events.close)
    fence = LeaseFence(client, settings)
    ledger = KubeLedgerStore(client, settings.namespace)
    requests = KubeReleaseRequests(client, settings.namespace)
    return KubeParts(client, settings, store, fence, NodeGate(client), events, ledger, requests)
