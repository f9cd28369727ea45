"""The record format and the file store's durability rules (no simulator needed)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from oxide_csi.controller.attach import (
    AttachRecord,
    FileAttachRecordStore,
    OpKind,
    OpRecord,
    Phase,
)
from oxide_csi.controller.attach.records import RecordError

IID = "5d0c9f5e-2222-4222-8222-222222222222"


def sample(phase: Phase = Phase.STOPPING) -> AttachRecord:
    ops = (OpRecord(OpKind.ATTACH, "disk-a"), OpRecord(OpKind.DETACH, "disk-b"))
    return AttachRecord(IID, "node-1", True, phase, ops)


async def test_save_load_delete_round_trip(tmp_path: Path) -> None:
    store = FileAttachRecordStore(tmp_path / "nested" / "dir")
    assert await store.load_all() == []  # a missing directory is an empty store
    assert await store.load(IID) is None

    await store.save(sample())
    await store.save(sample().with_phase(Phase.STARTING))

    loaded = await store.load(IID)
    assert loaded is not None and loaded.phase is Phase.STARTING
    assert loaded.ops == sample().ops and loaded.was_running
    assert await store.load_all() == [loaded]
    assert sorted(os.listdir(store.directory)) == [f"{IID}.json"]  # no temporaries left

    await store.delete(IID)
    await store.delete(IID)  # deleting twice is fine
    assert await store.load_all() == []


async def test_torn_temporary_and_corrupt_records_are_skipped(tmp_path: Path) -> None:
    store = FileAttachRecordStore(tmp_path)
    await store.save(sample())
    (tmp_path / f"{IID}.json.tmp").write_text('{"version": 1, "inst')
    bad = "7e9d1f0a-3333-4333-8333-333333333333"
    (tmp_path / f"{bad}.json").write_text("not json")

    records = await store.load_all()

    assert [r.instance_id for r in records] == [IID]
    assert not (tmp_path / f"{IID}.json.tmp").exists()
    assert (tmp_path / f"{bad}.json").exists()  # kept for an operator to read


async def test_unsafe_instance_ids_never_become_paths(tmp_path: Path) -> None:
    store = FileAttachRecordStore(tmp_path)
    with pytest.raises(ValueError):
        await store.load("../etc/passwd")
    with pytest.raises(ValueError):
        await store.save(AttachRecord("a/b", "x", True, Phase.STOPPING))


def test_record_json_is_validated() -> None:
    record = sample()
    good = record.to_json()
    assert AttachRecord.from_json(json.loads(json.dumps(good))) == record
    cases: list[object] = [
        [],
        {**good, "version": 99},
        {**good, "phase": "sideways"},
        {**good, "ops": [{"kind": "attach"}]},
        {**good, "instance_id": ""},
    ]
    for broken in cases:
        with pytest.raises(RecordError):
            AttachRecord.from_json(broken)
