"""The directories the kubelet makes for a volume, made and removed as the kubelet would.

Why the demo makes them itself: the CSI node service mounts at paths the CO chose and
created (the staging directory; the target's parent), and refuses paths outside its kubelet
directory. The demo plays the kubelet, so it uses the kubelet's layout and removes only the
directories it created, and only when empty: ``rmdir``, never ``rm -r``, so a directory that
is still a mount point, or holds anything else, stays where it is.
"""

from __future__ import annotations

import hashlib
import uuid
from contextlib import suppress
from pathlib import Path

from oxide_csi import DRIVER_NAME


def staging_path(kubelet_dir: Path, volume_name: str) -> Path:
    """``plugins/kubernetes.io/csi/DRIVER/SHA256(name)/globalmount``, as the kubelet names it."""
    digest = hashlib.sha256(volume_name.encode()).hexdigest()
    return kubelet_dir / "plugins/kubernetes.io/csi" / DRIVER_NAME / digest / "globalmount"


def target_path(kubelet_dir: Path, volume_name: str) -> Path:
    """``pods/UID/volumes/kubernetes.io~csi/NAME/mount`` of a new pod."""
    pod = kubelet_dir / "pods" / str(uuid.uuid4())
    return pod / "volumes/kubernetes.io~csi" / volume_name / "mount"


def make_dirs(path: Path) -> list[Path]:
    """``mkdir -p``, returning the directories it created, deepest first (to rmdir them)."""
    created: list[Path] = []
    for parent in [path, *path.parents]:
        if parent.exists():
            break
        created.append(parent)
    for directory in reversed(created):
        directory.mkdir()
    return created


def remove_dirs(created: list[Path]) -> None:
    """rmdir each, deepest first; one that is not empty raises (``OSError``) and stays."""
    for directory in created:
        with suppress(FileNotFoundError):
            directory.rmdir()
