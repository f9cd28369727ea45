"""SINGLE_NODE_SINGLE_WRITER and SINGLE_NODE_MULTI_WRITER on one node (spec, NodePublishVolume,
second table): with the SINGLE_NODE_MULTI_WRITER capability, a multi-writer volume may be
published at a second target path on the node, a single-writer volume may not
(FAILED_PRECONDITION).
"""

from __future__ import annotations

import os

from oxide_csi.csi_v1 import csi_pb2
from tests.sanity.checks.common import Attached, attach, detach, publish_request
from tests.sanity.driver import (
    AccessMode,
    CheckFailed,
    Code,
    ControllerCap,
    Driver,
    NodeCap,
    mount_capability,
)
from tests.sanity.resources import Resources


def _second_target(r: Resources, a: Attached) -> Attached:
    return Attached(
        volume=a.volume,
        capability=a.capability,
        node_id=a.node_id,
        publish_context=a.publish_context,
        staging_path=a.staging_path,
        target_path=r.target_path(),
    )


def _require_modes(d: Driver) -> None:
    d.require_controller(ControllerCap.CREATE_DELETE_VOLUME, ControllerCap.SINGLE_NODE_MULTI_WRITER)
    d.require_node(NodeCap.SINGLE_NODE_MULTI_WRITER)


def multi_writer_two_targets(d: Driver, r: Resources) -> None:
    """A SINGLE_NODE_MULTI_WRITER volume is published at two target paths (T1 != T2: OK),
    and both show the same files."""
    _require_modes(d)
    cap = mount_capability(AccessMode.SINGLE_NODE_MULTI_WRITER)
    volume = r.new_volume("multiwriter", capabilities=[cap])
    a = attach(d, r, volume, cap)
    b = _second_target(r, a)
    r.call("NodePublishVolume", publish_request(b), "at a second target path")
    name = "sanity-shared.txt"
    with open(os.path.join(a.target_path, name), "w") as handle:
        handle.write("shared")
    if not os.path.exists(os.path.join(b.target_path, name)):
        raise CheckFailed("the two target paths of one volume do not show the same files")
    os.unlink(os.path.join(a.target_path, name))
    r.call(
        "NodeUnpublishVolume",
        csi_pb2.NodeUnpublishVolumeRequest(volume_id=b.volume_id, target_path=b.target_path),
    )
    detach(d, r, a)


def single_writer_one_target(d: Driver, r: Resources) -> None:
    """A SINGLE_NODE_SINGLE_WRITER volume published at one target path is refused at a second
    one (T1 != T2: FAILED_PRECONDITION)."""
    _require_modes(d)
    cap = mount_capability(AccessMode.SINGLE_NODE_SINGLE_WRITER)
    volume = r.new_volume("singlewriter", capabilities=[cap])
    a = attach(d, r, volume, cap)
    b = _second_target(r, a)
    r.expect_error(
        Code.FAILED_PRECONDITION, "NodePublishVolume", publish_request(b), "at a second target"
    )
    detach(d, r, a)


CHECKS = (multi_writer_two_targets, single_writer_one_target)
