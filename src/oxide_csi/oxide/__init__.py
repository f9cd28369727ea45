"""Async client of the Oxide rack API (disks, snapshots, instances), independent of CSI and gRPC.

``OxideClient`` is the entry point; ``api_errors`` holds the typed failures every method raises.
"""

import importlib
from typing import TYPE_CHECKING, Any

from oxide_csi.config_common import DEFAULT_API_VERSION, ConfigError
from oxide_csi.oxide import api_errors
from oxide_csi.oxide.client_config import OxideConfig
from oxide_csi.oxide.selectors import NameOrId, is_uuid

if TYPE_CHECKING:
    from oxide_csi.oxide.client import OxideClient
    from oxide_csi.oxide.models import (
        Disk,
        Image,
        Instance,
        Project,
        Snapshot,
        Utilization,
    )
    from oxide_csi.oxide.transport import RequestObserver

#: Names loaded on first use, and the module of each.
_LAZY = {
    "OxideClient": "client",
    "RequestObserver": "transport",
    **dict.fromkeys(
        ("Disk", "Image", "Instance", "Project", "Snapshot", "Utilization"),
        "models",
    ),
}


def __getattr__(name: str) -> Any:
    """Load the client (and httpx with it) and the response models on first use only.

    The gRPC layer maps this package's errors to status codes in every process, the node
    plugin's included, which never talks to Oxide; importing ``api_errors`` must cost it neither
    httpx nor the models, memory paid on every node of a cluster.
    """
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = [
    "DEFAULT_API_VERSION",
    "ConfigError",
    "Disk",
    "Image",
    "Instance",
    "NameOrId",
    "OxideClient",
    "OxideConfig",
    "Project",
    "RequestObserver",
    "Snapshot",
    "Utilization",
    "api_errors",
    "is_uuid",
]
