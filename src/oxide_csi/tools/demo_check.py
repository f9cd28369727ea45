"""The demo's last step: proof that nothing it made is left, through CSI and, when it can
see it, Oxide.

Why both: CSI shows what the plugin believes (no volume listed, no snapshot), Oxide what is
really there. The two may rightly differ for a while: a plugin that defers a disk's deletion to
its instance's next stop/start cycle (so that deleting a claim never powers a node off) answers
DeleteVolume at once while the disk is still attached. Such a disk counts as gone and is named.
"""

from __future__ import annotations

import os
from pathlib import Path

from oxide_csi.tools.csi_calls import CsiCalls
from oxide_csi.tools.oxide_view import OxideView

#: Disk states in which a deleted volume's disk is still with its instance: the plugin detaches
#: and deletes it in that instance's next cycle (deferred deletion).
_WAITING_FOR_CYCLE = frozenset({"attached", "attaching", "detaching"})


class CheckFailed(Exception):
    """The plugin answered, but not what a working plugin answers."""


def mounted(path: Path) -> bool:
    wanted = os.path.realpath(path)
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            if line.split()[4].replace("\\040", " ") == wanted:
                return True
    return False


def oxide_leftover(view: OxideView, kind: str, ident: str) -> list[str]:
    """What Oxide still holds of a deleted volume or snapshot: nothing (``[]``), a disk that
    waits for its instance's next cycle (a note), or anything else (:class:`CheckFailed`)."""
    if kind == "snapshot":
        if view.snapshot(ident) is not None:
            raise CheckFailed(f"snapshot {ident} is still in Oxide after DeleteSnapshot")
        return []
    disk = view.disk(ident)
    if disk is None:
        return []
    state = str(disk.get("state", {}).get("state"))
    if state == "destroyed":
        return []
    if state in _WAITING_FOR_CYCLE:
        return [f"disk {disk.get('name')} is still to be deleted at its instance's next cycle"]
    raise CheckFailed(f"disk {ident} is still in Oxide ({state}) after DeleteVolume")


def check_gone(
    csi: CsiCalls,
    view: OxideView | None,
    gone: list[tuple[str, str]],
    paths: list[Path],
) -> str:
    """Raise :class:`CheckFailed` for anything of ``gone`` (kind, id) still there or any of
    ``paths`` still mounted; otherwise say what was checked."""
    listed = csi.volume_ids()
    notes = []
    for kind, ident in gone:
        if kind == "volume" and ident in listed:
            raise CheckFailed(f"volume {ident} is still listed after DeleteVolume")
        if kind == "snapshot" and csi.snapshot(ident) is not None:
            raise CheckFailed(f"snapshot {ident} is still listed after DeleteSnapshot")
        if view is not None:
            notes.extend(oxide_leftover(view, kind, ident))
    for path in paths:
        if mounted(path):
            raise CheckFailed(f"{path} is still mounted")
    volumes = sum(kind == "volume" for kind, _ in gone)
    where = "in CSI and in Oxide" if view is not None else "in CSI"
    done = f"{volumes} volumes, {len(gone) - volumes} snapshot gone {where}; nothing mounted"
    return "; ".join([done, *notes])
