"""Topology: which nodes may have our volumes attached, as the CO learns it from us.

Every attach power-cycles the node's instance. Some nodes must never be cycled -- control-plane
nodes above all, whose stop takes the API server or etcd down with them. So the plugin uses
CSI topology with one key, ``csi.oxide.computer/attachable``: a node plugin started with
``--attachable=false`` reports ``"false"`` in NodeGetInfo, all others ``"true"``; every volume
CreateVolume makes is accessible from ``"true"`` only. Kubernetes turns that into the PV's node
affinity, and the scheduler keeps pods with our volumes off the nodes that must stay up.

A CreateVolume whose accessibility requirements admit no attachable segment (a pod was
scheduled onto a control-plane node, say) is RESOURCE_EXHAUSTED, the spec's "unable to
provision in accessible_topology": the external-provisioner then clears the claim's selected
node and the scheduler picks another. Volumes made before topology existed carry none; their
PVs have no node affinity and keep working everywhere.
"""

from __future__ import annotations

from oxide_csi import DRIVER_NAME
from oxide_csi.csi_v1 import csi_pb2
from oxide_csi.errors import ResourceExhausted

ATTACHABLE_KEY = f"{DRIVER_NAME}/attachable"


def node_topology(attachable: bool) -> csi_pb2.Topology:
    """What NodeGetInfo reports for a node plugin with ``--attachable`` set so."""
    return csi_pb2.Topology(segments={ATTACHABLE_KEY: "true" if attachable else "false"})


#: Where every volume of ours is accessible from (old ones too: the rule is the node's).
VOLUME_TOPOLOGY = (node_topology(True),)


def check_requirements(requirements: csi_pb2.TopologyRequirement) -> None:
    """Refuse a CreateVolume whose accessibility requirements admit no attachable node.

    A segment admits our volumes when it says ``attachable: "true"`` or does not name the
    key at all (it then constrains something else). The spec lets ``requisite`` be empty and
    ``preferred`` stand alone; either way, one admitting segment is enough.
    """
    offered = list(requirements.requisite) or list(requirements.preferred)
    if offered and not any(t.segments.get(ATTACHABLE_KEY, "true") == "true" for t in offered):
        shown = ", ".join(sorted({t.segments.get(ATTACHABLE_KEY, "") for t in offered}))
        raise ResourceExhausted(
            f"the volume can only be attached to nodes with {ATTACHABLE_KEY}=true, and the "
            f"request allows only {ATTACHABLE_KEY}={shown}: schedule the pod onto a node "
            "whose node plugin runs without --attachable=false"
        )
