"""The dev-mode device plane: this machine's disks, as loop devices, follow the instance it plays.

``oxide-csi dev`` makes this machine one instance of the simulated project. On a rack, a disk
attached to an instance appears in the guest as an NVMe device when the instance boots and
disappears when it is powered off. The plane reproduces that with the simulator's instance
hooks: ``before_running`` binds a loop device for every disk attached to our instance (boot disk
included), ``after_stopped`` takes them all away, and the node finds them by the same identity
check it uses on a rack (the backing file's name is the serial). On a hot-plug rack
(``--hotplug``) ``disk_hotplugged``/``disk_unplugged`` add or take one device while it runs.

The truth about what is bound is always read back from sysfs (loop devices whose backing file
lies in the device directory), never kept in memory, so the plane is idempotent, survives a
crash of a previous run (``release_everything`` at start-up reaps what it left) and never
touches loop devices that are not its own.

Hook calls come from the simulator's scheduler thread, start-up and shutdown from the main
thread; one lock serialises them. The plane knows nothing of the simulator: the hooks receive
the API's JSON (instance and disk views), and only ``oxide_csi.dev`` wires the two together.
"""

from __future__ import annotations

import functools
import os
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from oxide_csi.devplane.links import DeviceDir
from oxide_csi.devplane.loops import (
    DevicePlaneError,
    LoopDevice,
    attach,
    detach,
    loops_backed_in,
)
from oxide_csi.devplane.unmount import mounts_of, unmount_matching
from oxide_csi.errors import CSIError
from oxide_csi.node.device_identity import serial_from_disk_name

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class DiskSpec:
    """What the plane needs of one attached disk (from the API's ``Disk`` JSON)."""

    disk_id: str
    serial: str
    size: int
    read_only: bool

    @classmethod
    def from_view(cls, view: Mapping[str, Any]) -> DiskSpec:
        try:
            serial = serial_from_disk_name(str(view["name"]))
        except CSIError as exc:
            raise DevicePlaneError(str(exc)) from None
        return cls(
            disk_id=str(view["id"]),
            serial=serial,
            size=int(view["size"]),
            read_only=bool(view.get("read_only", False)),
        )


class DevicePlane:
    """Loop devices for the disks of the instance named ``instance_name``.

    Implements the simulator's instance hook protocol (``before_running``/``after_stopped``).
    """

    def __init__(
        self,
        instance_name: str,
        devices_dir: Path,
        data_dir: Path,
        sys_root: Path = Path("/sys"),
        mountinfo: Path = Path("/proc/self/mountinfo"),
        boot_id_file: Path | None = None,
    ) -> None:
        self.instance_name = instance_name
        #: The guest's boot id (the node plugin reads it as a real node reads /proc's): a
        #: new one at every start of the instance, as a reboot gives a real host.
        self.boot_id_file = boot_id_file
        self.links = DeviceDir(devices_dir, data_dir)
        self._sys = sys_root
        self._mountinfo = mountinfo
        self._lock = threading.Lock()

    @property
    def devices_dir(self) -> Path:
        return self.links.devices

    # ----- instance hooks ---------------------------------------------------------------------

    def before_running(
        self, instance: Mapping[str, Any], disks: Sequence[Mapping[str, Any]]
    ) -> None:
        """Bind a loop device for each disk of our instance as it boots.

        All or nothing: if one disk cannot be bound, every device of the instance is released
        again and the error propagates (the simulator then marks the instance ``failed``, as a
        VMM that cannot boot would), so no half-attached instance is ever left behind.
        """
        if instance.get("name") != self.instance_name:
            return
        with self._lock:
            self._new_boot()
            try:
                self._bind(disks)
            except Exception as exc:
                # the simulator logs the traceback; here only what it means for the devices
                log.error(
                    "dev device plane: cannot bind disks, releasing all",
                    instance=self.instance_name,
                    error=str(exc),
                )
                self._release_loops()
                raise

    def after_stopped(
        self, instance: Mapping[str, Any], disks: Sequence[Mapping[str, Any]]
    ) -> None:
        """The instance was powered off: every device of it goes, whatever ``disks`` says."""
        if instance.get("name") != self.instance_name:
            return
        with self._lock:
            self._release_loops()

    def shut_down_guest(self) -> None:
        """The guest's part of an orderly power-off: flush, and unmount every filesystem on
        our devices (and the bind mounts of them); the devices go when the instance stops."""
        os.sync()
        with self._lock:
            for loop in self.bound():
                unmount_matching(functools.partial(mounts_of, loop), self._mountinfo)

    def disk_hotplugged(self, instance: Mapping[str, Any], disk: Mapping[str, Any]) -> None:
        """A hot-plug rack attached ``disk`` while our instance runs: its device appears now.

        A device already bound for the disk stays (a repeated call); a device of the same
        serial bound for another disk means two disks share a serial, and the second is not
        shown, as at boot.
        """
        if instance.get("name") != self.instance_name:
            return
        spec = DiskSpec.from_view(disk)
        with self._lock:
            if any(loop.backing.name == spec.serial for loop in self.bound()):
                if self.links.is_linked(spec.serial, spec.disk_id):
                    return
                log.warning(
                    "dev device plane: duplicate serial, disk not shown",
                    serial=spec.serial,
                    disk_id=spec.disk_id,
                )
                return
            self._bind_one(spec)

    def disk_unplugged(self, instance: Mapping[str, Any], disk: Mapping[str, Any]) -> None:
        """A hot-plug rack detached ``disk`` from our running instance: its device goes now,
        and with it any mount of it (as a yanked disk would take them)."""
        if instance.get("name") != self.instance_name:
            return
        spec = DiskSpec.from_view(disk)
        with self._lock:
            if not self.links.is_linked(spec.serial, spec.disk_id):
                return  # not ours to take: the serial's device shows another disk, or none
            for loop in self.bound():
                if loop.backing.name == spec.serial:
                    self._release(loop)

    # ----- start-up and shutdown --------------------------------------------------------------

    def release_everything(self) -> None:
        """Unmount what our loop devices back, then release them all (start-up and exit).

        At start-up this reaps what a crashed run left; at exit it is the power-off. Only our
        own devices' mounts go (their filesystems, bind mounts of those, bind mounts of their
        device nodes), found through mountinfo: a kubelet directory may hold a real kubelet's
        pod volumes, tokens or another driver's volumes, and none of that is ours to touch.
        Data is never deleted: only links and loop devices go.
        """
        with self._lock:
            self._release_loops()

    def bound(self) -> list[LoopDevice]:
        """Loop devices of ours currently bound (backing file in the device directory)."""
        return loops_backed_in(self.devices_dir, self._sys)

    # ----- internals (lock held) --------------------------------------------------------------

    def _new_boot(self) -> None:
        if self.boot_id_file is not None:
            self.boot_id_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.boot_id_file.with_name(self.boot_id_file.name + ".tmp")
            tmp.write_text(f"{uuid.uuid4()}\n")
            os.replace(tmp, self.boot_id_file)

    def _bind(self, disks: Sequence[Mapping[str, Any]]) -> None:
        wanted: dict[str, DiskSpec] = {}
        for view in disks:
            spec = DiskSpec.from_view(view)
            if spec.serial in wanted:
                # Two disks whose names share their first 20 bytes: a guest would see two
                # devices with one serial, which the node would (rightly) refuse to guess
                # between. Only one file can carry the name, so the second is not shown.
                log.warning(
                    "dev device plane: duplicate serial, disk not shown",
                    serial=spec.serial,
                    disk_id=spec.disk_id,
                )
                continue
            wanted[spec.serial] = spec
        kept: set[str] = set()
        for loop in self.bound():
            serial = loop.backing.name
            want = wanted.get(serial)
            if (
                want is not None
                and serial not in kept
                and not loop.deleted
                and self.links.is_linked(serial, want.disk_id)
            ):
                kept.add(serial)  # already bound to the right data (a repeated hook call)
                continue
            # Not wanted, stale, or a second device for one serial: it goes. The link stays
            # for a wanted serial (a kept device may use it; ensure_link fixes a wrong one).
            self._release(loop, remove_link=want is None)
        for serial, spec in wanted.items():
            if serial not in kept:
                self._bind_one(spec)

    def _bind_one(self, spec: DiskSpec) -> None:
        link = self.links.ensure_link(spec.serial, spec.disk_id, spec.size)
        name = attach(link, read_only=spec.read_only)
        log.info(
            "dev device plane: disk attached",
            device=f"/dev/{name}",
            serial=spec.serial,
            disk_id=spec.disk_id,
        )

    def _release(self, loop: LoopDevice, remove_link: bool = True) -> None:
        unmount_matching(lambda ms: mounts_of(loop, ms), self._mountinfo)
        detach(loop, self._sys)
        if remove_link:
            self.links.remove(loop.backing.name)
        log.info(
            "dev device plane: disk detached", device=str(loop.dev_path), serial=loop.backing.name
        )

    def _release_loops(self) -> None:
        """Release every bound device of ours, then drop any link left without one."""
        errors: list[str] = []
        for loop in self.bound():
            try:
                self._release(loop)
            except (DevicePlaneError, CSIError) as exc:
                errors.append(str(exc))
        self.links.clear()
        if errors:
            raise DevicePlaneError("; ".join(errors))
