"""Attaching disks to Oxide instances, which must be powered off for it.

:class:`AttachCoordinator` is what the CSI controller calls; it batches the power cycles per
instance and keeps a durable :class:`AttachRecord` while an instance is off on our account, so
that a crashed controller still starts it again. See ``coordinator.py`` for the rules.
"""

from oxide_csi.controller.attach.coordinator import AttachCoordinator
from oxide_csi.controller.attach.file_store import FileAttachRecordStore
from oxide_csi.controller.attach.hot import HotAttach
from oxide_csi.controller.attach.ops import AttachResult
from oxide_csi.controller.attach.power import StartPolicy
from oxide_csi.controller.attach.records import (
    AttachRecord,
    AttachRecordStore,
    OpKind,
    OpRecord,
    Phase,
)
from oxide_csi.controller.attach.reports import CycleObserver, CycleReport

__all__ = [
    "AttachCoordinator",
    "AttachRecord",
    "AttachRecordStore",
    "AttachResult",
    "CycleObserver",
    "CycleReport",
    "FileAttachRecordStore",
    "HotAttach",
    "OpKind",
    "OpRecord",
    "Phase",
    "StartPolicy",
]
