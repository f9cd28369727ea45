"""Async client of the Oxide rack API (disks, snapshots, instances), independent of CSI and gRPC.

``OxideClient`` is the entry point; ``errors`` holds the typed failures every method raises.
"""

from oxide_csi.oxide import errors
from oxide_csi.oxide.client import OxideClient
from oxide_csi.oxide.config import DEFAULT_API_VERSION, ConfigError, OxideConfig
from oxide_csi.oxide.models import (
    CurrentUser,
    Disk,
    Image,
    Instance,
    Project,
    Snapshot,
    Utilization,
)
from oxide_csi.oxide.selectors import NameOrId, is_uuid
from oxide_csi.oxide.transport import RequestObserver

__all__ = [
    "DEFAULT_API_VERSION",
    "ConfigError",
    "CurrentUser",
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
    "errors",
    "is_uuid",
]
