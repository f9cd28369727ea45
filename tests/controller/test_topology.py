"""Volumes stay off nodes that must never be power-cycled: CSI topology on CreateVolume."""

from __future__ import annotations

import grpc

from oxide_csi.csi_v1 import csi_pb2
from tests.controller.conftest import GIB, Rig, mount_cap
from tests.rpc import code_of

KEY = "csi.oxide.computer/attachable"


def _where(*values: str) -> list[csi_pb2.Topology]:
    return [csi_pb2.Topology(segments={KEY: v}) for v in values]


def _request(name: str, requirements: csi_pb2.TopologyRequirement) -> csi_pb2.CreateVolumeRequest:
    return csi_pb2.CreateVolumeRequest(
        name=name,
        capacity_range=csi_pb2.CapacityRange(required_bytes=GIB),
        volume_capabilities=[mount_cap()],
        accessibility_requirements=requirements,
    )


async def test_every_volume_is_accessible_from_attachable_nodes_only(rig: Rig) -> None:
    plain = (await rig.create("pvc-topo-plain")).volume
    assert [dict(t.segments) for t in plain.accessible_topology] == [{KEY: "true"}]
    # As the external-provisioner asks with strict topology off: every node's segment.
    both = csi_pb2.TopologyRequirement(requisite=_where("false", "true"), preferred=_where("true"))
    made = await rig.stub.CreateVolume(_request("pvc-topo-both", both), timeout=30)
    assert [dict(t.segments) for t in made.volume.accessible_topology] == [{KEY: "true"}]
    # Listed and looked up volumes say the same.
    got = await rig.stub.ControllerGetVolume(
        csi_pb2.ControllerGetVolumeRequest(volume_id=plain.volume_id), timeout=30
    )
    assert [dict(t.segments) for t in got.volume.accessible_topology] == [{KEY: "true"}]


async def test_a_request_that_admits_no_attachable_node_is_refused(rig: Rig) -> None:
    """A pod scheduled onto a control-plane node: RESOURCE_EXHAUSTED, nothing made, so the
    provisioner lets the scheduler pick another node."""
    for requirements in (
        csi_pb2.TopologyRequirement(requisite=_where("false"), preferred=_where("false")),
        csi_pb2.TopologyRequirement(preferred=_where("false")),
    ):
        request = _request("pvc-topo-cp", requirements)
        code = await code_of(rig.stub.CreateVolume(request))
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert [d async for d in rig.client.list_disks() if d.name.startswith("csi-")] == []


async def test_segments_about_other_keys_do_not_constrain_us(rig: Rig) -> None:
    other = csi_pb2.TopologyRequirement(
        requisite=[csi_pb2.Topology(segments={"topology.kubernetes.io/zone": "a"})]
    )
    made = await rig.stub.CreateVolume(_request("pvc-topo-other", other), timeout=30)
    assert made.volume.volume_id
