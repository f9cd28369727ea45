"""A kubelet-like directory: mounts a kubelet would have made that dev mode must never touch.

A tmpfs (a pod's emptyDir), a bind mount (a projected service-account token) and plain files
(a pod's etc-hosts, the kubelet's own config) -- made by the test, not by dev mode, so every one
of them must outlive dev mode's start, its power cycles, a crash, a restart and its exit.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.dev.helpers import mount_points_under

POD = "pods/7c3d1f0e-0000-4000-8000-00000000a001"


@dataclass(frozen=True)
class KubeletLike:
    root: Path
    empty_dir: Path
    token: Path
    files: tuple[Path, ...]

    @classmethod
    def make(cls, root: Path, token_source: Path) -> KubeletLike:
        empty_dir = root / POD / "volumes/kubernetes.io~empty-dir/cache"
        token = root / POD / "volumes/kubernetes.io~projected/kube-api-access-x1"
        for point in (empty_dir, token, token_source):
            point.mkdir(parents=True, exist_ok=True)
        (token_source / "token").write_text("not-a-real-token")
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(empty_dir)], check=True
        )
        subprocess.run(["mount", "--bind", str(token_source), str(token)], check=True)
        (empty_dir / "scratch").write_text("pod data")
        files = (root / POD / "etc-hosts", root / "config.yaml")
        for path in files:
            path.write_text(f"{path.name} of the kubelet\n")
        return cls(root, empty_dir, token, files)

    @property
    def mount_points(self) -> set[str]:
        return {str(self.empty_dir), str(self.token)}

    def assert_untouched(self) -> None:
        """Every mount and file the test made is still there, with its content."""
        present = set(mount_points_under(self.root))
        assert self.mount_points <= present, present
        assert (self.empty_dir / "scratch").read_text() == "pod data"
        assert (self.token / "token").read_text() == "not-a-real-token"
        for path in self.files:
            assert path.read_text() == f"{path.name} of the kubelet\n"

    def others(self) -> set[str]:
        """Mount points under the directory that are not the test's own (dev mode's)."""
        return set(mount_points_under(self.root)) - self.mount_points
