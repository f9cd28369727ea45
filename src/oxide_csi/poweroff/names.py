"""The Kubernetes objects of the power-off channel, by name, label and key.

Shared by the controller's side (``kube.py``, on lightkube) and the node's (``node_kube.py``,
on the node's small client), and imported by neither's HTTP stack: the node must not load
lightkube to know what its heartbeat Lease is called.
"""

from __future__ import annotations

HEARTBEAT_PREFIX = "oxide-csi-node-"
REQUEST_PREFIX = "oxide-csi-poweroff-"
#: The label that finds the requests for one instance (the node's watch selects on it).
FOR_LABEL = "csi.oxide.computer/power-off-for"
KIND_LABEL = "csi.oxide.computer/state"
BOOT_ANNOTATION = "csi.oxide.computer/boot-id"
STARTED_ANNOTATION = "csi.oxide.computer/node-started"
DATA_KEY = "request.json"
MANAGED_BY = {"app.kubernetes.io/managed-by": "oxide-csi"}
