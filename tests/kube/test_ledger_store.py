"""Released-disk ledgers as ConfigMaps against the test API server: read back what is written,
labelled; two controllers changing one ledger at once both land (a conflict is read again and
the change applied to what is there); an unreadable ledger is never overwritten."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from kube_sim import KubeSim
from oxide_csi.controller.attach.ledger import Ledger, LedgerChange, ReleasedDisk
from oxide_csi.kube.ledger import KubeLedgerStore
from oxide_csi.kube.records import RecordConflict
from tests.kube.harness import NAMESPACE
from tests.kube.inproc import client_for, controller_settings

IID = "7c0d6b1e-0b7a-4f43-9a55-7c1e2d3b4a51"


def _adding(disk: str) -> LedgerChange:
    def add(ledger: Ledger) -> Ledger:
        return ledger.put(ReleasedDisk(disk, f"name-{disk}", since=1.0))

    return add


def _ledgers(kube: KubeSim) -> list[dict[str, object]]:
    return kube.list(
        "v1", "ConfigMap", NAMESPACE, label_selector="csi.oxide.computer/state=released-disks"
    )


async def test_round_trip_and_labels(kube: KubeSim, tmp_path: Path) -> None:
    async with client_for(controller_settings(kube, tmp_path, "a")) as client:
        store = KubeLedgerStore(client, NAMESPACE)
        assert await store.load(IID) is None
        await store.update(IID, "node-a", lambda ledger: ledger)  # nothing: nothing written
        assert _ledgers(kube) == []
        await store.update(IID, "node-a", _adding("d1"))
        loaded = await store.load(IID)
        assert loaded is not None and [d.disk_id for d in loaded.disks] == ["d1"]
        assert loaded.instance_name == "node-a"
        [stored] = _ledgers(kube)
        metadata = stored["metadata"]
        assert isinstance(metadata, dict)
        assert metadata["name"] == f"oxide-csi-released-{IID}"
        assert metadata["labels"]["csi.oxide.computer/instance"] == IID
        await store.update(IID, "node-a", lambda ledger: ledger.without(["d1"]))
        # an empty ledger stays, empty (see kube/ledger.py: no conditional delete)
        assert [ledger.disks for ledger in await store.load_all()] == [()]


async def test_two_controllers_changing_one_ledger_both_land(kube: KubeSim, tmp_path: Path) -> None:
    async with (
        client_for(controller_settings(kube, tmp_path, "a")) as ca,
        client_for(controller_settings(kube, tmp_path, "b")) as cb,
    ):
        a, b = KubeLedgerStore(ca, NAMESPACE), KubeLedgerStore(cb, NAMESPACE)
        await asyncio.gather(
            *((a if i % 2 else b).update(IID, "node-a", _adding(f"d{i}")) for i in range(8))
        )
        loaded = await a.load(IID)
        assert loaded is not None
        assert sorted(d.disk_id for d in loaded.disks) == [f"d{i}" for i in range(8)]


async def test_an_unreadable_ledger_is_never_overwritten(kube: KubeSim, tmp_path: Path) -> None:
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": f"oxide-csi-released-{IID}",
                "namespace": NAMESPACE,
                "labels": {"csi.oxide.computer/state": "released-disks"},
            },
            "data": {"ledger.json": "{not json"},
        }
    )
    async with client_for(controller_settings(kube, tmp_path, "a")) as client:
        store = KubeLedgerStore(client, NAMESPACE)
        assert await store.load_all() == []
        with pytest.raises(RecordConflict):
            await store.update(IID, "node-a", _adding("d1"))
        [stored] = _ledgers(kube)
        assert stored["data"] == {"ledger.json": "{not json"}
