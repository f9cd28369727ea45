"""The temporary snapshot a clone starts from (Oxide makes disks from snapshots and images only).

Split from ``volumes.py`` (which decides *that* a volume is a clone) because this is *how*: the
snapshot's name derives from the target volume, so a retried clone reuses it; what is in the
way is replaced only when it is ours (``clone_sweep.py`` deletes the ones nobody finished).
"""

from __future__ import annotations

import contextlib

from oxide_csi.controller import naming
from oxide_csi.controller.metadata import clone_description, is_clone_description
from oxide_csi.errors import FailedPrecondition
from oxide_csi.oxide import OxideClient, Snapshot, api_errors

#: A snapshot in this state never becomes ready.
_FAULTED = frozenset({"faulted"})


async def clone_snapshot(
    client: OxideClient, target: str, source_disk_id: str, deadline: float
) -> Snapshot:
    """The ready temporary snapshot of the source that a clone into ``target`` starts from.

    An earlier attempt (timed out, or refused later) may have left it: one of the same disk
    is reused; one of another disk (the same target name asked earlier with another source)
    is ours to replace -- the name space ``clone-<hash of target>`` belongs to this clone.
    """
    name = naming.clone_snapshot_name(target)
    try:
        snap = await client.get_snapshot(name, deadline=deadline)
    except api_errors.OxideNotFound:
        snap = None
    if snap is not None and not is_clone_description(snap.description):
        raise FailedPrecondition(
            f"Oxide snapshot {name} is in the way of cloning into {target!r} and was not "
            "made by this plugin; rename or delete it"
        )
    if snap is not None and (
        snap.disk_id.lower() != source_disk_id.lower() or snap.state in _FAULTED
    ):
        # Of another source, or faulted (it will never become ready): replace it.
        with contextlib.suppress(api_errors.OxideNotFound):
            await client.delete_snapshot(snap.id, deadline=deadline)
        snap = None
    if snap is None:
        snap = await client.create_snapshot(
            name,
            disk=source_disk_id,
            description=clone_description(source_disk_id, target),
            deadline=deadline,
        )
    if snap.state != "ready":
        snap = await client.wait_snapshot(snap.id, deadline=deadline)
    return snap
