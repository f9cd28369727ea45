"""Formatting: how long staging a brand-new disk takes, by size and filesystem.

The first NodeStageVolume of a new volume formats it, and the pod waits for that. On a big
disk the mkfs defaults can take long: ``mkfs.ext4`` zeroes its journal (1 GiB on a large
filesystem) and both tools discard the whole device, which on a network-backed disk may take
time proportional to its size. The plugin's own mkfs options (``oxide_csi.node.format``) skip
both, since a known-new disk already reads as zeros.

For every size (1, 100, 1000 GiB) and filesystem (ext4, xfs) a fresh sparse file, named by a
disk serial in a device directory as in dev mode, becomes a loop device and is staged, three
ways:

* ours: what NodeStageVolume runs for a new blank volume -- the device found by its serial
  (``DeviceFinder`` over the loop devices of that directory) and ``Stager.stage_filesystem``
  with ``known_new``: identity check, blkid probe, zero check of both ends, mkfs with our
  options, identity check again, mount, mountinfo check;
* ours, mkfs only: the same mkfs command without the checks, then a mount;
* defaults: plain ``mkfs.ext4 -q`` / ``mkfs.xfs -q``, then a mount.

Reported: stage seconds (all of the above, mount included), and how much of the backing file
the format wrote (allocated MiB). A loop device discards by punching holes,
which is cheap, so the discard cost of a real disk does not show here; the journal zeroing
does. Median of ``--repeat`` runs. Target (the README's): stage under 0.1 s at 100 GiB.

Needs root (losetup, mkfs, mount). Run: ``.venv/bin/python -m bench.formatting``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.common import machine_line, print_table, write_results
from oxide_csi.logsetup import configure_logging
from oxide_csi.node.device_identity import LoopBackingFileSource
from oxide_csi.node.devices import DeviceFinder
from oxide_csi.node.format import mkfs_argv
from oxide_csi.node.mounts import Mounter
from oxide_csi.node.stage import Stager

GIB = 1 << 30
#: The README's target: staging a new 100 GiB disk takes less than this many seconds.
TARGET_STAGE_S = 0.1
SERIAL = "bench-format-serial0"


def run(argv: list[str]) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True, timeout=600).stdout


@contextmanager
def loop_device(directory: Path, size: int) -> Iterator[tuple[Path, Path]]:
    """A fresh sparse file ``directory/SERIAL`` of ``size`` bytes on a loop device.

    Named by the serial the way dev mode names its disks, so the plugin's finder knows it.
    Yields (device, backing file).
    """
    backing = directory / SERIAL
    backing.touch(exist_ok=False)
    os.truncate(backing, size)
    device = Path(run(["losetup", "--find", "--show", "--direct-io=off", str(backing)]).strip())
    try:
        yield device, backing
    finally:
        run(["losetup", "--detach", str(device)])
        backing.unlink()


def ours(fs_type: str, devices: Path, target: Path) -> None:
    """NodeStageVolume's own path for a new blank volume: find by serial, stage."""
    finder = DeviceFinder(sources=(LoopBackingFileSource(devices),), timeout=10)
    device = finder.wait_for(SERIAL)
    Stager(finder, Mounter()).stage_filesystem(device.path, SERIAL, target, fs_type, known_new=True)


def _mkfs_and_mount(argv: list[str], fs_type: str, target: Path) -> None:
    device = argv[-1]
    run(argv)
    run(["mount", "-t", fs_type, device, str(target)])


def ours_mkfs_only(fs_type: str, devices: Path, target: Path) -> None:
    device = run(["losetup", "--associated", str(devices / SERIAL)]).split(":", 1)[0]
    _mkfs_and_mount(mkfs_argv(fs_type, Path(device)), fs_type, target)


def defaults(fs_type: str, devices: Path, target: Path) -> None:
    device = run(["losetup", "--associated", str(devices / SERIAL)]).split(":", 1)[0]
    _mkfs_and_mount([f"mkfs.{fs_type}", "-q", device], fs_type, target)


def stage_once(
    directory: Path, size: int, fs_type: str, stage: Callable[[str, Path, Path], None]
) -> dict[str, float]:
    devices = directory / "devices"
    devices.mkdir(exist_ok=True)
    target = directory / "mnt"
    target.mkdir(exist_ok=True)
    with loop_device(devices, size) as (_device, backing):
        started = time.perf_counter()
        stage(fs_type, devices, target)
        staged = time.perf_counter()
        run(["umount", str(target)])
        written = os.stat(backing).st_blocks * 512
    return {"stage_s": staged - started, "written_mib": written / 2**20}


def median_run(
    directory: Path,
    size: int,
    fs_type: str,
    stage: Callable[[str, Path, Path], None],
    repeat: int,
) -> dict[str, float]:
    runs = [stage_once(directory, size, fs_type, stage) for _ in range(repeat)]
    return {
        "stage_s": round(statistics.median(r["stage_s"] for r in runs), 3),
        "written_mib": round(statistics.median(r["written_mib"] for r in runs), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes-gib", default="1,100,1000")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default="/var/tmp", help="where the sparse files go")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("formatting needs root (losetup, mkfs, mount)")
    configure_logging("warning", "console")
    sizes = [int(s) for s in args.sizes_gib.split(",")]
    settings: dict[str, Any] = {
        "sizes_gib": sizes,
        "repeat": args.repeat,
        "ours_ext4": " ".join(mkfs_argv("ext4", Path("DEV"))),
        "ours_xfs": " ".join(mkfs_argv("xfs", Path("DEV"))),
        "defaults_ext4": "mkfs.ext4 -q DEV",
        "defaults_xfs": "mkfs.xfs -q DEV",
        "ours": "DeviceFinder(LoopBackingFileSource).wait_for(serial) + "
        "Stager.stage_filesystem(known_new=True), mount included",
        "loop": "sparse file named by the serial, losetup --direct-io=off",
        "mkfs_versions": run(["mkfs.xfs", "-V"]).strip() + "; " + _mke2fs_version(),
    }
    print(f"formatting on {machine_line()}; settings {settings}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-format-", dir=args.dir) as tmp:
        for size in sizes:
            for fs_type in ("ext4", "xfs"):
                for label, fmt in VARIANTS:
                    figures = median_run(Path(tmp), size * GIB, fs_type, fmt, args.repeat)
                    rows.append({"size_gib": size, "fs": fs_type, "options": label, **figures})
                    print(f"  {rows[-1]}", flush=True)
    print_table(
        f"Staging a new disk (format + mount), median of {args.repeat}",
        ["size GiB", "fs", "options", "stage s", "written MiB"],
        [list(r.values()) for r in rows],
    )
    hundred = [r for r in rows if r["size_gib"] == 100 and r["options"] == "ours"]
    if hundred:
        worst = max(float(r["stage_s"]) for r in hundred)
        verdict = "met" if worst < TARGET_STAGE_S else "MISSED"
        print(f"target stage < {TARGET_STAGE_S} s at 100 GiB: {verdict} ({worst} s)")
    print(f"results: {write_results('formatting', settings, rows)}")


def _mke2fs_version() -> str:
    result = subprocess.run(["mkfs.ext4", "-V"], capture_output=True, text=True, check=False)
    return (result.stderr or result.stdout).splitlines()[0].strip()


VARIANTS: tuple[tuple[str, Callable[[str, Path, Path], None]], ...] = (
    ("ours", ours),
    ("ours, mkfs only", ours_mkfs_only),
    ("defaults", defaults),
)

if __name__ == "__main__":
    main()
