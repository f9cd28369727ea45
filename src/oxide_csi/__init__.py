"""oxide-csi: the Kubernetes CSI plugin for Oxide rack disks (``csi.oxide.computer``)."""

from importlib import metadata

DRIVER_NAME = "csi.oxide.computer"

try:
    __version__ = metadata.version("oxide-csi")
except metadata.PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+src"

__all__ = ["DRIVER_NAME", "__version__"]
