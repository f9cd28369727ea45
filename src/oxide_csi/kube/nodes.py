"""Which Node of this cluster an instance is, and whether we may power-cycle it.

Why ask Kubernetes and not only Oxide: the project may hold instances that are not nodes of
this cluster (another cluster's nodes, a database VM), and nodes that must never be cycled
(control-plane nodes, whose node plugin reports ``attachable: "false"``). Oxide knows neither.
A publish for such an instance is refused before anything is stopped.

An instance is matched to its Node by ``spec.providerID`` (``oxide://<instance uuid>``, set by
the Oxide cloud controller manager) or, where no CCM runs, by the node id that our node plugin
reported and the kubelet wrote into the CSINode's entry for our driver: exactly the id the
external-attacher sends in ControllerPublishVolume. The Node must carry the label
``csi.oxide.computer/attachable=true`` (the kubelet sets it from NodeGetInfo's topology).
"""

from __future__ import annotations

from dataclasses import dataclass

from lightkube import ApiError, AsyncClient
from lightkube.resources.core_v1 import Node
from lightkube.resources.storage_v1 import CSINode

from oxide_csi import DRIVER_NAME, errors
from oxide_csi.kube.records import TRANSPORT_ERRORS

ATTACHABLE_LABEL = "csi.oxide.computer/attachable"
PROVIDER_PREFIX = "oxide://"
#: Role labels of a control-plane node, matched by key: kubeadm sets the value "", k3s and
#: RKE2 "true"; older clusters still carry ``master``.
CONTROL_PLANE_LABELS = ("node-role.kubernetes.io/control-plane", "node-role.kubernetes.io/master")


class NotANode(errors.FailedPrecondition):
    """The instance is no Node of this cluster (or does not exist at all)."""


@dataclass(frozen=True)
class NodeMatch:
    name: str
    attachable: bool
    control_plane: bool = False


class NodeGate:
    """Maps node ids and instances to Nodes; refuses the ones we must not cycle."""

    def __init__(self, client: AsyncClient) -> None:
        self._client = client
        #: instance id or node id -> Node name; a Node's identity does not change.
        self._names: dict[str, str] = {}

    async def require_attachable(self, node_id: str, *ids: str) -> str:
        """The Node's name for ``node_id`` (the CO's id: instance UUID or name), else
        FailedPrecondition saying why it may not be cycled. ``ids`` are more spellings of the
        same instance to match (its UUID and name)."""
        match = await self.find(node_id, *ids)
        if match is None:
            raise NotANode(
                f"instance {node_id!r} is not a node of this Kubernetes cluster (no Node with "
                f"providerID {PROVIDER_PREFIX}<uuid>, no CSINode naming it for {DRIVER_NAME}); "
                "the plugin power-cycles only this cluster's nodes"
            )
        if not match.attachable:
            raise errors.FailedPrecondition(
                f"node {match.name!r} is not labelled {ATTACHABLE_LABEL}=true; the plugin does "
                "not power-cycle it to attach or detach disks (control-plane nodes and nodes "
                "whose plugin runs with --attachable=false)"
            )
        return match.name

    async def node_name(self, *ids: str) -> str | None:
        """The Node name of an instance (for Events), or None when it is none of ours."""
        for key in ids:
            if key in self._names:
                return self._names[key]
        match = await self.find(*ids)
        return match.name if match is not None else None

    async def control_plane(self, instance_id: str, instance_name: str) -> bool:
        """Whether the instance is a control-plane Node of this cluster, for the cycle budget
        (``controller/attach/budget.py``); read afresh, since roles can be relabelled."""
        match = await self.find(instance_id, instance_name)
        return match is not None and match.control_plane

    async def find(self, *ids: str) -> NodeMatch | None:
        wanted = {i for i in ids if i}
        providers = {PROVIDER_PREFIX + i for i in wanted}
        try:
            nodes = {n.metadata.name: n async for n in self._client.list(Node) if n.metadata}
            found = next(
                (n for n in nodes.values() if n.spec and n.spec.providerID in providers), None
            )
            if found is None:
                name = await self._by_csinode(wanted)
                found = nodes.get(name) if name else None
        except ApiError as exc:
            raise errors.Unavailable(f"cannot read the cluster's Nodes: {exc}") from exc
        except TRANSPORT_ERRORS as exc:
            raise errors.Unavailable(f"cannot read the cluster's Nodes: {exc!r}") from exc
        if found is None or found.metadata is None or not found.metadata.name:
            return None
        name = found.metadata.name
        for key in wanted:
            self._names[key] = name
        labels = found.metadata.labels or {}
        return NodeMatch(
            name=name,
            attachable=labels.get(ATTACHABLE_LABEL) == "true",
            control_plane=any(key in labels for key in CONTROL_PLANE_LABELS),
        )

    async def _by_csinode(self, wanted: set[str]) -> str | None:
        async for csinode in self._client.list(CSINode):
            for driver in csinode.spec.drivers if csinode.spec else []:
                if driver.name == DRIVER_NAME and driver.nodeID in wanted:
                    return csinode.metadata.name if csinode.metadata else None
        return None
