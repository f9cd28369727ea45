"""ControllerUnpublishVolume without a node id also cancels a crash leftover's attach.

"No node" means "from wherever it is"; a disk a dead controller was attaching is not anywhere
yet, but would be once recovery applies the leftover -- so it counts as there.
"""

from __future__ import annotations

from pathlib import Path

from oxide_csi.controller.attach import (
    AttachRecord,
    FileAttachRecordStore,
    OpKind,
    OpRecord,
    Phase,
)
from tests.controller.conftest import Rig


async def test_unpublish_without_node_cancels_a_leftover_attach(rig: Rig, tmp_path: Path) -> None:
    volume = (await rig.create("pvc-leftover")).volume
    inst = await rig.client.get_instance("instance-0")
    store = FileAttachRecordStore(tmp_path / "controller" / "attach")
    ops = (OpRecord(OpKind.ATTACH, volume.volume_id),)
    await store.save(AttachRecord(inst.id, inst.name, True, Phase.STOPPING, ops))
    await rig.client.stop_instance(inst.id)  # the dead controller's stop

    await rig.unpublish(volume.volume_id)  # no node id

    disk = await rig.client.get_disk(volume.volume_id)
    assert disk.state == "detached"
    assert (await rig.client.get_instance(inst.id)).run_state == "running"
    assert await store.load_all() == []
