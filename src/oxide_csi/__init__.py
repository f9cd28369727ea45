"""oxide-csi: the Kubernetes CSI plugin for Oxide rack disks (``csi.oxide.computer``).

The version is written here, and pyproject.toml reads it from here, rather than asked of
``importlib.metadata`` at run time: that lookup scans the installed distributions and pulls in
the email and zipfile packages, a few MB of resident memory on every node for one string.
"""

DRIVER_NAME = "csi.oxide.computer"
__version__ = "0.1.0"

__all__ = ["DRIVER_NAME", "__version__"]
