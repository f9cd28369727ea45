"""``oxide-csi demo``: one volume through its whole life, against a running plugin.

Why: after ``oxide-csi dev`` a newcomer holds a socket and nothing to use it with, and an
operator wants proof that a plugin works end to end. The demo is a CSI client doing what
Kubernetes would, in order: create, attach (the instance stops and starts for it on Oxide),
stage (format and mount), publish, write and read back a file, snapshot, restore, then
unpublish, unstage, detach, delete, and a last check that nothing is left. The kubelet's part
(directories under the kubelet directory, the write) it does itself, so it runs as root where
the plugin's node runs. It needs a plugin serving controller and node on one socket.

Everything it makes is taken down again (:mod:`oxide_csi.tools.undo`), also after a failed step
or an interrupt. This module holds the steps; :mod:`oxide_csi.tools.demo_run` the command.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path
from typing import TypeVar

import grpc

from oxide_csi import DRIVER_NAME
from oxide_csi.csi_v1 import csi_pb2, csi_pb2_grpc
from oxide_csi.tools.demo_check import CheckFailed, check_gone
from oxide_csi.tools.oxide_view import InstanceWatch, OxideView
from oxide_csi.tools.progress import FAILED, INTERRUPTED, OK, Reporter, StepResult
from oxide_csi.tools.undo import UndoStack

GIB = 1 << 30
T = TypeVar("T")
#: Status codes that say a create made nothing; after any other failure it may have.
_REFUSALS = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.ALREADY_EXISTS,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.OUT_OF_RANGE,
        grpc.StatusCode.UNIMPLEMENTED,
    }
)
SNAPSHOT_READY_POLL = 0.2
#: How often, and how far apart, the clean-up repeats an interrupted create to learn its id.
REPEATS = 5
REPEAT_PAUSE = 1.0
_Access = csi_pb2.VolumeCapability.AccessMode


class StepFailed(Exception):
    def __init__(self, step: str, error: str) -> None:
        super().__init__(f"step {step} failed: {error}")
        self.step = step
        self.error = error


def describe(exc: BaseException) -> str:
    if isinstance(exc, grpc.RpcError):
        code: grpc.StatusCode = exc.code()
        return f"{code.name}: {exc.details()}"
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc} ({exc.filename})" if exc.filename else str(exc)
    return str(exc) or type(exc).__name__


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
    """rmdir, never rm -r: a directory that is not empty (still a mount point, say) stays."""
    for directory in created:
        with suppress(FileNotFoundError):
            directory.rmdir()


class Demo:
    def __init__(
        self,
        channel: grpc.Channel,
        kubelet_dir: Path,
        reporter: Reporter,
        *,
        view: OxideView | None = None,
        size_gib: int = 1,
        timeout: float = 300.0,
    ) -> None:
        self.identity = csi_pb2_grpc.IdentityStub(channel)
        self.controller = csi_pb2_grpc.ControllerStub(channel)
        self.node = csi_pb2_grpc.NodeStub(channel)
        self.reporter = reporter
        self.view = view
        self.size = size_gib * GIB
        self.timeout = timeout
        self.undo = UndoStack()
        self.results: list[StepResult] = []
        self.name = f"oxide-csi-demo-{secrets.token_hex(4)}"
        digest = hashlib.sha256(self.name.encode()).hexdigest()
        self.staging = (
            kubelet_dir / "plugins/kubernetes.io/csi" / DRIVER_NAME / digest / "globalmount"
        )
        pod = kubelet_dir / "pods" / str(uuid.uuid4())
        self.target = pod / "volumes/kubernetes.io~csi" / self.name / "mount"
        self.node_id = ""
        self.volume = csi_pb2.Volume()
        self.context: dict[str, str] = {}
        self.snapshot_id = ""
        self.gone: list[tuple[str, str]] = []  # (kind, id) deleted, to check at the end

    # -- running steps -------------------------------------------------------------------

    @contextmanager
    def step(self, name: str) -> Iterator[StepResult]:
        result = StepResult(name)
        self.results.append(result)
        try:
            self.reporter.start(result)
            yield result
        except KeyboardInterrupt:
            self._end(result, INTERRUPTED, "interrupted")
            raise
        except Exception as exc:
            self._end(result, FAILED, describe(exc))
            raise StepFailed(name, describe(exc)) from exc
        self._end(result, OK, result.detail)

    def _end(self, result: StepResult, outcome: str, detail: str) -> None:
        result.outcome, result.detail = outcome, detail
        result.seconds = time.monotonic() - result.started
        self.reporter.finish(result)

    def watching(self) -> InstanceWatch | nullcontext[None]:
        """Watch the node's instance during a step, when the demo can see Oxide."""
        if self.view is None:
            return nullcontext()
        return InstanceWatch(
            self.view, self.node_id, lambda name, state: self.reporter.note(f"{name} {state}")
        )

    def run(self) -> None:
        for step in (
            self.connect, self.create, self.attach, self.stage, self.publish, self.write,
            self.snapshot, self.restore, self.unpublish, self.unstage, self.detach,
            self.delete, self.check,
        ):  # fmt: skip
            with self.step(step.__name__) as result:
                result.detail = step() or ""

    def clean_up(self) -> list[str]:
        """Undo what is left, newest first; returns what could not be undone."""
        left = []
        for action in self.undo.pending():
            try:
                with self.step(f"clean-up: {action.label}"):
                    action.run()
                self.undo.discard(action)
            except StepFailed as exc:
                left.append(f"{action.label} ({exc.error})")
        return left

    # -- the steps -----------------------------------------------------------------------

    def connect(self) -> str:
        info = self.identity.GetPluginInfo(csi_pb2.GetPluginInfoRequest(), timeout=30)
        self.node_id = self.node.NodeGetInfo(csi_pb2.NodeGetInfoRequest(), timeout=30).node_id
        return f"{info.name} {info.vendor_version}, node {self.node_id}"

    def _capability(self) -> csi_pb2.VolumeCapability:
        return csi_pb2.VolumeCapability(
            mount=csi_pb2.VolumeCapability.MountVolume(fs_type="ext4"),
            access_mode=_Access(mode=_Access.SINGLE_NODE_WRITER),
        )

    def _made(
        self, key: str, kind: str, create: Callable[[], T], id_of: Callable[[T], str],
        delete: Callable[[str], None],
    ) -> T:  # fmt: skip
        """``create()``, then push the ``delete`` of what it made onto the undo stack.

        When we cannot know whether the create took effect (interrupted, timed out, the
        connection lost, an internal error), the undo repeats the create first: CSI creates
        are idempotent by name, so the repeat returns what the first one made (or makes it)
        and the undo deletes that. A definite refusal made nothing, so nothing is pushed."""
        try:
            made = create()
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt) or (
                isinstance(exc, grpc.RpcError) and exc.code() not in _REFUSALS
            ):

                def find_and_delete() -> None:
                    delete(id_of(self._repeat(create)))

                self.undo.push(key, f"find and delete the {kind}", find_and_delete)
            raise
        ident = id_of(made)
        self.undo.push(key, f"delete {kind} {ident}", lambda: delete(ident))
        return made

    def _repeat(self, create: Callable[[], T]) -> T:
        """Repeat an interrupted create until it answers, as a CO would. While the first
        attempt is still under way the plugin may say ABORTED (busy with that name) or, when
        that attempt lands between its look-up and its own create, ALREADY_EXISTS; the next
        repeat then finds the object by name."""
        for _ in range(REPEATS - 1):
            try:
                return create()
            except grpc.RpcError as exc:
                if exc.code() not in (grpc.StatusCode.ABORTED, grpc.StatusCode.ALREADY_EXISTS):
                    raise
            time.sleep(REPEAT_PAUSE)
        return create()

    def _create(self, name: str, source: csi_pb2.VolumeContentSource | None) -> csi_pb2.Volume:
        request = csi_pb2.CreateVolumeRequest(
            name=name,
            capacity_range=csi_pb2.CapacityRange(required_bytes=self.size),
            volume_capabilities=[self._capability()],
            volume_content_source=source,
        )

        def create() -> csi_pb2.Volume:
            return self.controller.CreateVolume(request, timeout=self.timeout).volume

        return self._made(name, "volume", create, lambda v: v.volume_id, self._delete_volume)

    def _delete_volume(self, volume_id: str) -> None:
        request = csi_pb2.DeleteVolumeRequest(volume_id=volume_id)
        self.controller.DeleteVolume(request, timeout=self.timeout)
        self.gone.append(("volume", volume_id))

    def create(self) -> str:
        self.volume = self._create(self.name, None)
        return f"volume {self.volume.volume_id}, {self.volume.capacity_bytes / GIB:g} GiB"

    def attach(self) -> str:
        request = csi_pb2.ControllerPublishVolumeRequest(
            volume_id=self.volume.volume_id,
            node_id=self.node_id,
            volume_capability=self._capability(),
            volume_context=self.volume.volume_context,
        )
        self.undo.push("detach", "detach", self._detach)
        with self.watching() as watch:
            reply = self.controller.ControllerPublishVolume(request, timeout=self.timeout)
            if watch:
                watch.settle(self.timeout)
        self.context = dict(reply.publish_context)
        return watch.story() if watch else "attached (no Oxide access to show the instance)"

    def _detach(self) -> None:
        request = csi_pb2.ControllerUnpublishVolumeRequest(
            volume_id=self.volume.volume_id, node_id=self.node_id
        )
        self.controller.ControllerUnpublishVolume(request, timeout=self.timeout)

    def _directories(self, key: str, what: str, path: Path) -> None:
        created = make_dirs(path)
        self.undo.push(key, f"remove {what} directories", lambda: remove_dirs(created))

    def stage(self) -> str:
        self._directories("staging-dirs", "staging", self.staging)
        request = csi_pb2.NodeStageVolumeRequest(
            volume_id=self.volume.volume_id,
            publish_context=self.context,
            staging_target_path=str(self.staging),
            volume_capability=self._capability(),
            volume_context=self.volume.volume_context,
        )
        unstage = csi_pb2.NodeUnstageVolumeRequest(
            volume_id=self.volume.volume_id, staging_target_path=str(self.staging)
        )
        self._push_node_call("unstage", self.node.NodeUnstageVolume, unstage)
        self.node.NodeStageVolume(request, timeout=self.timeout)
        return "ext4 on the disk, mounted at the staging path"

    def _push_node_call(self, key: str, method: Callable[..., object], request: object) -> None:
        """Undo by a node call that is idempotent (so pushed before the call it undoes)."""

        def undo() -> None:
            method(request, timeout=self.timeout)

        self.undo.push(key, key, undo)

    def publish(self) -> str:
        self._directories("target-dirs", "pod", self.target.parent)
        request = csi_pb2.NodePublishVolumeRequest(
            volume_id=self.volume.volume_id,
            publish_context=self.context,
            staging_target_path=str(self.staging),
            target_path=str(self.target),
            volume_capability=self._capability(),
            volume_context=self.volume.volume_context,
        )
        unpublish = csi_pb2.NodeUnpublishVolumeRequest(
            volume_id=self.volume.volume_id, target_path=str(self.target)
        )
        self._push_node_call("unpublish", self.node.NodeUnpublishVolume, unpublish)
        self.node.NodePublishVolume(request, timeout=self.timeout)
        return "bind-mounted at the pod's target path"

    def write(self) -> str:
        path = self.target / "hello-from-oxide-csi.txt"
        text = f"written by oxide-csi demo {self.name} at {time.ctime()}\n"
        with path.open("w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())  # on the disk before the snapshot is taken
        if path.read_text() != text:
            raise CheckFailed(f"{path} reads back differently")
        stats = self.node.NodeGetVolumeStats(
            csi_pb2.NodeGetVolumeStatsRequest(
                volume_id=self.volume.volume_id, volume_path=str(self.target)
            ),
            timeout=30,
        )
        total = next((u.total for u in stats.usage if u.unit == u.BYTES), 0)
        return f"{len(text)} bytes written and read back; filesystem of {total / GIB:.2f} GiB"

    def snapshot(self) -> str:
        request = csi_pb2.CreateSnapshotRequest(
            source_volume_id=self.volume.volume_id, name=f"{self.name}-snapshot"
        )

        def create() -> csi_pb2.Snapshot:
            return self.controller.CreateSnapshot(request, timeout=self.timeout).snapshot

        snap = self._made(
            "snapshot", "snapshot", create, lambda s: s.snapshot_id, self._delete_snapshot
        )
        self.snapshot_id = snap.snapshot_id
        deadline = time.monotonic() + self.timeout
        while not snap.ready_to_use:
            if time.monotonic() > deadline:
                raise CheckFailed(f"snapshot {snap.snapshot_id} not ready in {self.timeout:g} s")
            time.sleep(SNAPSHOT_READY_POLL)
            listed = self.controller.ListSnapshots(
                csi_pb2.ListSnapshotsRequest(snapshot_id=snap.snapshot_id), timeout=30
            )
            if listed.entries:
                snap = listed.entries[0].snapshot
        return f"snapshot {snap.snapshot_id}, ready"

    def _delete_snapshot(self, snapshot_id: str) -> None:
        request = csi_pb2.DeleteSnapshotRequest(snapshot_id=snapshot_id)
        self.controller.DeleteSnapshot(request, timeout=self.timeout)
        self.gone.append(("snapshot", snapshot_id))

    def restore(self) -> str:
        source = csi_pb2.VolumeContentSource(
            snapshot=csi_pb2.VolumeContentSource.SnapshotSource(snapshot_id=self.snapshot_id)
        )
        restored = self._create(f"{self.name}-restored", source)
        return f"volume {restored.volume_id} from snapshot {self.snapshot_id}"

    def unpublish(self) -> str:
        self.undo.run("unpublish")
        self.undo.run("target-dirs")
        return "target path unmounted and removed"

    def unstage(self) -> str:
        self.undo.run("unstage")
        self.undo.run("staging-dirs")
        return "staging path unmounted and removed"

    def detach(self) -> str:
        with self.watching() as watch:
            self.undo.run("detach")
            if watch:
                watch.settle(self.timeout)
        return watch.story() if watch else "detached"

    def delete(self) -> str:
        for key in (f"{self.name}-restored", "snapshot", self.name):
            self.undo.run(key)
        return "restored volume, snapshot and volume deleted"

    def check(self) -> str:
        return check_gone(self.controller, self.view, self.gone, [self.staging, self.target])
