"""Attach records as ConfigMaps against the test API server: what is written is read back,
a write over someone else's change is refused (resourceVersion), an unreadable record is
skipped, and an unreachable API server is an OSError, as the coordinator expects of stores."""

from __future__ import annotations

from pathlib import Path

import pytest

from kube_sim import KubeSim
from oxide_csi.controller.attach import AttachRecord, OpKind, OpRecord, Phase
from oxide_csi.kube.records import KubeAttachRecordStore, RecordConflict, StoreUnavailable
from tests.kube.harness import NAMESPACE, state_left
from tests.kube.inproc import client_for, controller_settings

IID = "2f9d6c1e-0b7a-4f43-9a55-7c1e2d3b4a50"


def record(phase: Phase = Phase.STOPPING) -> AttachRecord:
    return AttachRecord(
        instance_id=IID,
        instance_name="node-a",
        was_running=True,
        phase=phase,
        ops=(OpRecord(OpKind.ATTACH, "disk-1"),),
    )


async def test_round_trip_and_labels(kube: KubeSim, tmp_path: Path) -> None:
    async with client_for(controller_settings(kube, tmp_path, "a")) as client:
        store = KubeAttachRecordStore(client, NAMESPACE)
        assert await store.load(IID) is None
        await store.save(record())
        await store.save(record(Phase.APPLYING))
        loaded = await store.load(IID)
        assert loaded is not None
        assert (loaded.phase, loaded.ops, loaded.was_running) == (
            Phase.APPLYING,
            record().ops,
            True,
        )
        [stored] = state_left(kube)
        assert stored["metadata"]["name"] == f"oxide-csi-attach-{IID}"
        assert stored["metadata"]["labels"]["csi.oxide.computer/instance"] == IID
        assert [r.phase for r in await store.load_all()] == [Phase.APPLYING]
        await store.delete(IID)
        await store.delete(IID)  # gone is gone
        assert state_left(kube) == []
        assert await store.load_all() == []


async def test_a_write_over_someone_elses_change_is_refused(kube: KubeSim, tmp_path: Path) -> None:
    async with (
        client_for(controller_settings(kube, tmp_path, "a")) as ca,
        client_for(controller_settings(kube, tmp_path, "b")) as cb,
    ):
        a, b = KubeAttachRecordStore(ca, NAMESPACE), KubeAttachRecordStore(cb, NAMESPACE)
        assert await a.load(IID) is None
        await b.save(record())
        with pytest.raises(RecordConflict):
            await a.save(record())  # a saw none; b created one meanwhile
        await a.load(IID)
        await b.save(record(Phase.APPLYING))
        with pytest.raises(RecordConflict):
            await a.save(record(Phase.STARTING))  # stale resourceVersion: 409
        loaded = await a.load(IID)
        assert loaded is not None and loaded.phase is Phase.APPLYING
        await a.save(record(Phase.STARTING))  # after reading again it may write


async def test_unreadable_records_are_skipped(kube: KubeSim, tmp_path: Path) -> None:
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "oxide-csi-attach-garbage",
                "namespace": NAMESPACE,
                "labels": {"csi.oxide.computer/state": "attach-record"},
            },
            "data": {"record.json": "{not json"},
        }
    )
    async with client_for(controller_settings(kube, tmp_path, "a")) as client:
        store = KubeAttachRecordStore(client, NAMESPACE)
        await store.save(record())
        assert [r.instance_id for r in await store.load_all()] == [IID]


async def test_an_unreachable_api_server_is_an_os_error(kube: KubeSim, tmp_path: Path) -> None:
    settings = controller_settings(kube, tmp_path, "a")
    kube.block("inproc-a", mode="reset")
    async with client_for(settings) as client:
        store = KubeAttachRecordStore(client, NAMESPACE)
        with pytest.raises(StoreUnavailable) as failed:
            await store.save(record())
        assert isinstance(failed.value, OSError)
        with pytest.raises(OSError):
            await store.load_all()


async def test_the_client_speaks_tls_with_the_kubeconfig_ca(tmp_path: Path) -> None:
    with KubeSim(tls=True, namespaces=(NAMESPACE,)) as secure:
        assert secure.url.startswith("https://")
        async with client_for(controller_settings(secure, tmp_path, "a")) as client:
            store = KubeAttachRecordStore(client, NAMESPACE)
            await store.save(record())
            assert [r.instance_id for r in await store.load_all()] == [IID]
