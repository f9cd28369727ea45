"""``oxide-csi demo``: one volume through its whole life, against a running plugin.

Why: after ``oxide-csi dev`` a newcomer holds a socket and nothing to use it with, and an
operator wants proof that a plugin works end to end. The demo is a CSI client doing what
Kubernetes would, in order: create, attach (on Oxide the instance stops and starts for it),
stage (format and mount), publish, write and read back a file, snapshot, restore the snapshot
to a second volume and read the file back from that one, then unpublish, unstage, detach both
volumes (together: one stop/start when the plugin batches), delete, and a last check that
nothing is left. The kubelet's part (its directories, the file) it does itself, so it runs as
root where the plugin's node runs, against a plugin serving controller and node on one socket.

Everything it makes is taken down again (:mod:`oxide_csi.tools.undo`), also after a failed step
or an interrupt. This module holds the steps; :mod:`oxide_csi.tools.demo_run` the command.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import grpc

from oxide_csi.csi_v1 import csi_pb2
from oxide_csi.tools.csi_calls import CsiCalls
from oxide_csi.tools.demo_check import CheckFailed, check_gone
from oxide_csi.tools.kubelet_paths import make_dirs, remove_dirs, staging_path, target_path
from oxide_csi.tools.oxide_view import InstanceWatch, OxideView
from oxide_csi.tools.progress import FAILED, INTERRUPTED, OK, Reporter, StepResult
from oxide_csi.tools.undo import UndoStack

GIB = 1 << 30
T = TypeVar("T")
FILE_NAME = "hello-from-oxide-csi.txt"
SNAPSHOT_READY_POLL = 0.2
#: How often, and how far apart, the clean-up repeats an interrupted create to learn its id.
REPEATS = 5
REPEAT_PAUSE = 1.0
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
        self.csi = CsiCalls(channel, timeout)
        self.reporter = reporter
        self.view = view
        self.size = size_gib * GIB
        self.timeout = timeout
        self.undo = UndoStack()
        self.results: list[StepResult] = []
        self.name = f"oxide-csi-demo-{secrets.token_hex(4)}"
        self.restored_name = f"{self.name}-restored"
        self.staging = staging_path(kubelet_dir, self.name)
        self.restored_staging = staging_path(kubelet_dir, self.restored_name)
        self.target = target_path(kubelet_dir, self.name)
        self.node_id = ""
        self.volume = self.restored = csi_pb2.Volume()
        self.context: dict[str, str] = {}
        self.text = ""
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

    def run(self) -> None:
        for step in (
            self.connect, self.create, self.attach, self.stage, self.publish, self.write,
            self.snapshot, self.restore, self.verify, self.unpublish, self.unstage,
            self.detach, self.delete, self.check,
        ):  # fmt: skip
            with self.step(step.__name__) as result:
                result.detail = step()

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

    @contextmanager
    def watching(self) -> Iterator[Callable[[str], str]]:
        """Watch the node's instance during a step (when the demo can see Oxide); yields a
        function that waits for the instance to run again and tells what it went through."""
        if self.view is None:
            yield lambda done: f"{done} (no Oxide access to show the instance)"
            return
        note = self.reporter.note
        with InstanceWatch(self.view, self.node_id, lambda n, s: note(f"{n} {s}")) as watch:

            def story(done: str) -> str:
                watch.settle(self.timeout)
                return watch.story()

            yield story

    # -- what the steps make, and how it is undone ---------------------------------------

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

    def _create_volume(self, name: str, snapshot_id: str = "") -> csi_pb2.Volume:
        def create() -> csi_pb2.Volume:
            return self.csi.create_volume(name, self.size, snapshot_id)

        def delete(volume_id: str) -> None:
            self.csi.delete_volume(volume_id)
            self.gone.append(("volume", volume_id))

        return self._made(name, "volume", create, lambda v: v.volume_id, delete)

    def _attach(self, volume: csi_pb2.Volume, key: str) -> dict[str, str]:
        # pushed first: a detach of what never attached succeeds (CSI: idempotent)
        self.undo.push(key, key, lambda: self.csi.detach(volume.volume_id, self.node_id))
        return self.csi.attach(volume, self.node_id)

    def _directories(self, key: str, path: Path) -> None:
        created = make_dirs(path)
        self.undo.push(key, f"remove {key}", lambda: remove_dirs(created))

    def _stage(
        self, volume: csi_pb2.Volume, context: dict[str, str], path: Path, key: str, dirs: str
    ) -> None:
        self._directories(dirs, path)
        self.undo.push(key, key, lambda: self.csi.unstage(volume.volume_id, path))
        self.csi.stage(volume, context, path)

    # -- the steps -----------------------------------------------------------------------

    def connect(self) -> str:
        plugin = self.csi.plugin()
        self.node_id = self.csi.node_id()
        return f"{plugin}, node {self.node_id}"

    def create(self) -> str:
        self.volume = self._create_volume(self.name)
        return f"volume {self.volume.volume_id}, {self.volume.capacity_bytes / GIB:g} GiB"

    def attach(self) -> str:
        with self.watching() as story:
            self.context = self._attach(self.volume, "detach")
            return story("attached")

    def stage(self) -> str:
        self._stage(self.volume, self.context, self.staging, "unstage", "staging directories")
        return "ext4 made on the new disk, mounted at the staging path"

    def publish(self) -> str:
        self._directories("pod directories", self.target.parent)
        volume_id = self.volume.volume_id
        self.undo.push("unpublish", "unpublish", lambda: self.csi.unpublish(volume_id, self.target))
        self.csi.publish(self.volume, self.context, self.staging, self.target)
        return "bind-mounted at the pod's target path"

    def write(self) -> str:
        path = self.target / FILE_NAME
        self.text = f"written by oxide-csi demo {self.name} at {time.ctime()}\n"
        with path.open("w") as out:
            out.write(self.text)
            out.flush()
            os.fsync(out.fileno())  # on the disk before the snapshot is taken
        if path.read_text() != self.text:
            raise CheckFailed(f"{path} reads back differently")
        size = self.csi.capacity(self.volume.volume_id, self.target) / GIB
        return f"{len(self.text)} bytes written and read back; filesystem of {size:.2f} GiB"

    def snapshot(self) -> str:
        def create() -> csi_pb2.Snapshot:
            return self.csi.create_snapshot(self.volume.volume_id, f"{self.name}-snapshot")

        def delete(snapshot_id: str) -> None:
            self.csi.delete_snapshot(snapshot_id)
            self.gone.append(("snapshot", snapshot_id))

        snap: csi_pb2.Snapshot | None = self._made(
            "snapshot", "snapshot", create, lambda s: s.snapshot_id, delete
        )
        self.snapshot_id = snap.snapshot_id if snap else ""
        deadline = time.monotonic() + self.timeout
        while snap is None or not snap.ready_to_use:
            if time.monotonic() > deadline:
                raise CheckFailed(f"snapshot {self.snapshot_id} not ready in {self.timeout:g} s")
            time.sleep(SNAPSHOT_READY_POLL)
            snap = self.csi.snapshot(self.snapshot_id)
        return f"snapshot {self.snapshot_id}, ready"

    def restore(self) -> str:
        self.restored = self._create_volume(self.restored_name, self.snapshot_id)
        if self.restored.content_source.snapshot.snapshot_id != self.snapshot_id:
            raise CheckFailed(f"volume {self.restored.volume_id} does not name its snapshot")
        return f"volume {self.restored.volume_id} from snapshot {self.snapshot_id}"

    def verify(self) -> str:
        """The restored volume holds the file: attached, staged (never formatted: it has
        data), read, unstaged. Its detach waits for the first volume's, to share a cycle."""
        with self.watching() as story:
            context = self._attach(self.restored, "detach restored")
            attached = story("attached")
        self._stage(
            self.restored, context, self.restored_staging, "unstage restored", "restored staging"
        )
        if (self.restored_staging / FILE_NAME).read_text() != self.text:
            raise CheckFailed("the restored volume's file differs from the one written")
        self.undo.run("unstage restored")
        self.undo.run("restored staging")
        return f"the file reads back the same from it; attach: {attached}"

    def unpublish(self) -> str:
        self.undo.run("unpublish")
        self.undo.run("pod directories")
        return "target path unmounted and removed"

    def unstage(self) -> str:
        self.undo.run("unstage")
        self.undo.run("staging directories")
        return "staging path unmounted and removed"

    def detach(self) -> str:
        """Both volumes at once, as Kubernetes would after two pods went: a plugin that
        batches detaches them in one stop/start of the instance."""
        with self.watching() as story, ThreadPoolExecutor(2) as pool:
            for done in [pool.submit(self.undo.run, k) for k in ("detach", "detach restored")]:
                done.result()
            return f"2 volumes: {story('detached')}"

    def delete(self) -> str:
        for key in (self.restored_name, "snapshot", self.name):
            self.undo.run(key)
        return "restored volume, snapshot and volume deleted"

    def check(self) -> str:
        mounts = [self.staging, self.restored_staging, self.target]
        return check_gone(self.csi, self.view, self.gone, mounts)
