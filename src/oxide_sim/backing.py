"""Sparse backing files for disks and snapshots (``SimConfig.disk_data_dir``).

Dev mode maps each disk to a loop device over ``<dir>/<disk_id>.img``; snapshots live in
``<dir>/snapshots/<snapshot_id>.img``,
images in ``<dir>/images/<image_id>.img``. Copies preserve holes (SEEK_DATA/SEEK_HOLE) so a 100 GiB
disk with a few MiB written costs a few MiB, and a snapshot really captures the data.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

_CHUNK = 1 << 20


class BackingStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "snapshots").mkdir(exist_ok=True)
        (self.root / "images").mkdir(exist_ok=True)

    def disk_path(self, disk_id: str) -> Path:
        return self.root / f"{disk_id}.img"

    def snapshot_path(self, snapshot_id: str) -> Path:
        return self.root / "snapshots" / f"{snapshot_id}.img"

    def image_path(self, image_id: str) -> Path:
        return self.root / "images" / f"{image_id}.img"

    def create_blank(self, disk_id: str, size: int) -> None:
        with open(self.disk_path(disk_id), "wb") as fh:
            fh.truncate(size)

    def create_from_snapshot(self, disk_id: str, snapshot_id: str, size: int) -> None:
        _copy_or_blank(self.snapshot_path(snapshot_id), self.disk_path(disk_id), size)

    def create_from_image(self, disk_id: str, image_id: str, size: int) -> None:
        _copy_or_blank(self.image_path(image_id), self.disk_path(disk_id), size)

    def image_from_snapshot(self, image_id: str, snapshot_id: str, size: int) -> None:
        """An image carries the snapshot's blocks, as Nexus copies them into the image."""
        _copy_or_blank(self.snapshot_path(snapshot_id), self.image_path(image_id), size)

    def delete_image(self, image_id: str) -> None:
        _unlink(self.image_path(image_id))

    def snapshot(self, disk_id: str, snapshot_id: str, size: int) -> None:
        _copy_or_blank(self.disk_path(disk_id), self.snapshot_path(snapshot_id), size)

    def delete_disk(self, disk_id: str) -> None:
        _unlink(self.disk_path(disk_id))

    def delete_snapshot(self, snapshot_id: str) -> None:
        _unlink(self.snapshot_path(snapshot_id))


def _copy_or_blank(src: Path, dst: Path, size: int) -> None:
    if src.exists():
        sparse_copy(src, dst, size)
    else:
        with open(dst, "wb") as fh:
            fh.truncate(size)


def _unlink(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def sparse_copy(src: Path, dst: Path, size: int) -> None:
    """Copy ``src`` to ``dst`` (truncated/extended to ``size``) writing only data regions."""
    tmp = dst.with_name(dst.name + ".part")
    with open(src, "rb") as fin, open(tmp, "wb") as fout:
        fout.truncate(size)
        src_size = os.fstat(fin.fileno()).st_size
        limit = min(src_size, size)
        for start, end in _data_regions(fin.fileno(), limit):
            fin.seek(start)
            fout.seek(start)
            remaining = end - start
            while remaining > 0:
                buf = fin.read(min(_CHUNK, remaining))
                if not buf:
                    break
                fout.write(buf)
                remaining -= len(buf)
        fout.flush()
        os.fsync(fout.fileno())
    os.replace(tmp, dst)


def _data_regions(fd: int, limit: int) -> list[tuple[int, int]]:
    regions: list[tuple[int, int]] = []
    pos = 0
    while pos < limit:
        try:
            data = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # no data after pos
                break
            if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP):  # filesystem without SEEK_DATA
                return [(0, limit)]
            raise
        if data >= limit:
            break
        hole = os.lseek(fd, data, os.SEEK_HOLE)
        end = min(hole, limit)
        regions.append((data, end))
        pos = end
    return regions
