"""Dev mode's device plane: disks attached to the simulated instance this machine plays become
real loop devices while it runs (see :mod:`oxide_csi.devplane.plane`)."""

from oxide_csi.devplane.loops import DevicePlaneError, LoopDevice, list_loops, loops_backed_in
from oxide_csi.devplane.plane import DevicePlane, DiskSpec

__all__ = [
    "DevicePlane",
    "DevicePlaneError",
    "DiskSpec",
    "LoopDevice",
    "list_loops",
    "loops_backed_in",
]
