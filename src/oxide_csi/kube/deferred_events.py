"""The Warning Event on a Node whose deleted volume's disk has waited too long.

With the deferred detach policy a deleted claim's disk (and its data) stays attached to its
node until that instance's next cycle. When that has not happened within
``--deferred-delete-alert-after``, the controller tells the Node, where an operator looking at
the node sees it, and the metric behind the chart's alert says the same.
"""

from __future__ import annotations

from collections.abc import Callable

from oxide_csi.controller.attach.ledger import Ledger, ReleasedDisk
from oxide_csi.kube.events import WARNING, EventRecorder, Target
from oxide_csi.kube.nodes import NodeGate

REASON = "DeferredDeleteStale"


def overdue_events(gate: NodeGate, events: EventRecorder) -> Callable[[Ledger, ReleasedDisk], None]:
    """The ``on_overdue`` hook of :class:`~oxide_csi.controller.attach.released.ReleasedDisks`.
    The message carries no age, so each pass counts the one Event up instead of adding one."""

    def tell(ledger: Ledger, entry: ReleasedDisk) -> None:
        async def node() -> Target | None:
            name = await gate.node_name(ledger.instance_id, ledger.instance_name)
            return Target.node(name) if name else None

        instance = ledger.instance_name or ledger.instance_id
        events.emit(
            node,
            WARNING,
            REASON,
            f"disk {entry.disk_name} of a deleted volume is still attached to instance "
            f"{instance}, waiting for its next power cycle to be detached and deleted; run "
            f"`oxide-csi release-instance {instance}` in a maintenance window",
        )

    return tell
