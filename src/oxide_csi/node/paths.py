"""Guard for paths that arrive in CSI requests (staging and target paths).

The node plugin runs as root with the host's kubelet directory mounted, and it mounts, creates
and deletes at the paths it is given. A path that climbs out (``..``), that is spelled oddly
enough to confuse a later comparison with ``/proc/self/mountinfo``, or that reaches outside
through a symlink planted in a pod-writable directory would let a request mount over or delete
host files. So every request path is checked here before anything else looks at it.

Residual risk, accepted: a symlink swapped in *after* the check (a TOCTOU race) is not caught;
the paths kubelet hands out live in directories only kubelet writes to.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

from oxide_csi.errors import InvalidArgument

DEFAULT_KUBELET_DIR = Path("/var/lib/kubelet")
_PATH_MAX = 4096


class PathGuard:
    """Accepts only normalised absolute paths strictly inside the kubelet directory.

    The kubelet directory itself may be a symlink (some distributions move it to another
    disk); paths are accepted when spelled under either the configured or the resolved form,
    and must stay under the resolved form once every existing component is resolved.
    """

    def __init__(self, kubelet_dir: Path = DEFAULT_KUBELET_DIR) -> None:
        text = str(kubelet_dir)
        if not kubelet_dir.is_absolute() or posixpath.normpath(text) != text or text == "/":
            raise ValueError(f"kubelet dir must be a normalised absolute path, got {text!r}")
        self.kubelet_dir = kubelet_dir
        self.real_kubelet_dir = Path(os.path.realpath(kubelet_dir))

    def check(self, raw: str, what: str = "path") -> Path:
        """Return the resolved, safe form of ``raw``, or raise :class:`InvalidArgument`.

        ``what`` names the request field in the error (``target_path``...).
        """
        if not raw:
            raise InvalidArgument(f"{what} is empty")
        if "\x00" in raw or "\n" in raw:
            raise InvalidArgument(f"{what} holds a NUL or newline character")
        if len(raw) >= _PATH_MAX:
            raise InvalidArgument(f"{what} is too long")
        if not raw.startswith("/"):
            raise InvalidArgument(f"{what} {raw!r} is not absolute")
        # normpath drops '.', '..', '//' and a trailing '/', except that POSIX lets it keep a
        # leading '//'; anything it would change is refused rather than silently "fixed".
        if "//" in raw or posixpath.normpath(raw) != raw:
            raise InvalidArgument(f"{what} {raw!r} is not normalised")
        if any(part in (".", "..") for part in raw.split("/")):
            raise InvalidArgument(f"{what} {raw!r} is not normalised")
        path = Path(raw)
        if not (
            _strictly_under(path, self.kubelet_dir) or _strictly_under(path, self.real_kubelet_dir)
        ):
            raise InvalidArgument(f"{what} {raw!r} is not inside {self.kubelet_dir}")
        # Resolves every existing component (the last one too: a symlink planted as the target
        # itself would redirect a mount); components that do not exist yet are kept as spelled.
        resolved = Path(os.path.realpath(path))
        if not _strictly_under(resolved, self.real_kubelet_dir):
            raise InvalidArgument(
                f"{what} {raw!r} leads outside {self.kubelet_dir} through a symlink"
            )
        return resolved


def _strictly_under(path: Path, root: Path) -> bool:
    return path != root and path.is_relative_to(root)
