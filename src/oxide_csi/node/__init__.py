"""Node-side domain logic: find the disk, check it is the right one, format, mount, report.

Nothing in this package holds credentials or talks to the Oxide API: the controller attaches
disks and tells the node which NVMe serial to expect, and everything here works from what the
guest kernel shows (sysfs, ``/proc/self/mountinfo``, the block device itself) plus util-linux,
e2fsprogs and xfsprogs.

Every function is *blocking* on purpose. The work is a handful of syscalls and short-lived
tools (``mount``, ``blkid``, ``mkfs``); straight-line blocking code keeps error handling
readable, lets the format lock be a plain :class:`threading.Lock`, and is trivially reusable
from a CLI or a test. The CSI servicer runs each call with :func:`asyncio.to_thread`. The one
wait that can last long -- a device appearing after attach -- also has an async form
(:meth:`DeviceFinder.wait_for_async`) that sleeps on the event loop instead of holding a worker
thread for the whole timeout.
"""
