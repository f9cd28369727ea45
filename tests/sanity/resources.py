"""Everything a check makes is recorded here and undone at teardown, even when the check fails.

Why track by RPC instead of asking each check to clean up: a check that fails halfway (which is
the point of a conformance suite) would otherwise leak volumes, attachments and mounts into the
next check. Every successful create/publish/stage is recorded with the call that undoes it; the
undoing call made by the check itself (DeleteVolume...) drops the record. At teardown, what is
left is undone newest first -- node unpublish, unstage, controller unpublish, delete -- which is
the order the specification requires.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import grpc

from oxide_csi.csi_v1 import csi_pb2
from tests.sanity.driver import CheckFailed, Code, Driver, rpc_error, unique_name

_Key = tuple[str, ...]


class Resources:
    def __init__(self, driver: Driver) -> None:
        self.driver = driver
        self._undo: dict[_Key, tuple[str, Any]] = {}
        self._dirs: list[Path] = []

    # ---- calls that record ---------------------------------------------------------------

    def call(self, rpc: str, request: Any, why: str = "") -> Any:
        """Call ``rpc`` (it must succeed) and record or forget what it made or undid."""
        __tracebackhide__ = True
        response = self.driver.ok(rpc, request, why)
        self._track(rpc, request, response)
        return response

    def expect_error(
        self, expected: Code | Iterable[Code], rpc: str, request: Any, why: str
    ) -> None:
        """``rpc`` must fail with ``expected``; whatever it made when it did not is undone."""
        __tracebackhide__ = True
        response, message = self.driver.fails(expected, rpc, request, why)
        if response is not None:
            self._track(rpc, request, response)
            raise CheckFailed(message)

    def call_all(self, rpc: str, requests: list[Any], why: str = "") -> list[Any]:
        """Issue ``rpc`` for every request at once (as a busy CO does); all must succeed."""
        futures = [self.driver.future(rpc, request) for request in requests]
        responses, failures = [], []
        for request, future in zip(requests, futures, strict=True):
            try:
                response = future.result()
            except grpc.RpcError as exc:
                code, details = rpc_error(exc)
                failures.append(f"{code.name}: {details}")
                continue
            self._track(rpc, request, response)
            responses.append(response)
        if failures:
            context = f" ({why})" if why else ""
            raise CheckFailed(
                f"{len(failures)} of {len(requests)} concurrent {rpc}{context} failed: "
                + "; ".join(failures)
            )
        return responses

    def call_or_fail_with(
        self, allowed: Code | Iterable[Code], rpc: str, request: Any, why: str
    ) -> Any:
        """``rpc`` may succeed (the response is returned and recorded) or fail with one of
        ``allowed`` (None is returned); any other outcome fails the check."""
        response, _ = self.driver.fails(allowed, rpc, request, why)
        if response is not None:
            self._track(rpc, request, response)
        return response

    def create_volume(self, request: csi_pb2.CreateVolumeRequest, why: str = "") -> csi_pb2.Volume:
        volume: csi_pb2.Volume = self.call("CreateVolume", request, why).volume
        if not volume.volume_id:
            raise CheckFailed("CreateVolume returned a volume without volume_id")
        return volume

    def new_volume(self, label: str, **kwargs: Any) -> csi_pb2.Volume:
        """A fresh volume with the configured size and parameters (mount, SINGLE_NODE_WRITER)."""
        return self.create_volume(self.driver.volume_request(unique_name(label), **kwargs))

    def delete_volume(self, volume_id: str) -> None:
        self.call("DeleteVolume", csi_pb2.DeleteVolumeRequest(volume_id=volume_id))

    def create_snapshot(self, source_volume_id: str, name: str) -> csi_pb2.Snapshot:
        request = csi_pb2.CreateSnapshotRequest(source_volume_id=source_volume_id, name=name)
        snapshot: csi_pb2.Snapshot = self.call("CreateSnapshot", request).snapshot
        if not snapshot.snapshot_id:
            raise CheckFailed("CreateSnapshot returned a snapshot without snapshot_id")
        return snapshot

    # ---- paths ---------------------------------------------------------------------------

    def staging_path(self) -> str:
        """A fresh, existing directory for NodeStageVolume (the CO creates it)."""
        path = self.driver.staging_dir / uuid.uuid4().hex[:16]
        path.mkdir(parents=True)
        self._dirs.append(path)
        return str(path)

    def target_path(self) -> str:
        """A fresh path for NodePublishVolume whose parent exists (the plugin creates it)."""
        parent = self.driver.target_dir / uuid.uuid4().hex[:16]
        parent.mkdir(parents=True)
        self._dirs.append(parent)
        return str(parent / "mount")

    # ---- bookkeeping ---------------------------------------------------------------------

    def _track(self, rpc: str, request: Any, response: Any) -> None:
        undo: tuple[_Key, str, Any] | None = None
        forget: _Key | None = None
        if rpc == "CreateVolume" and response.volume.volume_id:
            vid = response.volume.volume_id
            undo = (("volume", vid), "DeleteVolume", csi_pb2.DeleteVolumeRequest(volume_id=vid))
        elif rpc == "DeleteVolume":
            forget = ("volume", request.volume_id)
        elif rpc == "CreateSnapshot" and response.snapshot.snapshot_id:
            sid = response.snapshot.snapshot_id
            undo = (
                ("snapshot", sid),
                "DeleteSnapshot",
                csi_pb2.DeleteSnapshotRequest(snapshot_id=sid),
            )
        elif rpc == "DeleteSnapshot":
            forget = ("snapshot", request.snapshot_id)
        elif rpc == "ControllerPublishVolume":
            vid, node = request.volume_id, request.node_id
            unpublish = csi_pb2.ControllerUnpublishVolumeRequest(volume_id=vid, node_id=node)
            undo = (("cpub", vid, node), "ControllerUnpublishVolume", unpublish)
        elif rpc == "ControllerUnpublishVolume":
            if request.node_id:
                forget = ("cpub", request.volume_id, request.node_id)
            else:
                for key in [k for k in self._undo if k[:2] == ("cpub", request.volume_id)]:
                    del self._undo[key]
        elif rpc == "NodeStageVolume":
            vid, path = request.volume_id, request.staging_target_path
            unstage = csi_pb2.NodeUnstageVolumeRequest(volume_id=vid, staging_target_path=path)
            undo = (("stage", vid, path), "NodeUnstageVolume", unstage)
        elif rpc == "NodeUnstageVolume":
            forget = ("stage", request.volume_id, request.staging_target_path)
        elif rpc == "NodePublishVolume":
            vid, target = request.volume_id, request.target_path
            unpublish_node = csi_pb2.NodeUnpublishVolumeRequest(volume_id=vid, target_path=target)
            undo = (("npub", vid, target), "NodeUnpublishVolume", unpublish_node)
        elif rpc == "NodeUnpublishVolume":
            forget = ("npub", request.volume_id, request.target_path)
        if undo is not None and not all(undo[0][1:]):
            undo = None  # made without an id (a driver that ignored a missing field): no handle
        if undo is not None and undo[0] not in self._undo:
            self._undo[undo[0]] = (undo[1], undo[2])
        if forget is not None:
            self._undo.pop(forget, None)

    def pending(self) -> list[str]:
        """What teardown would undo, oldest first (for the suite's own tests)."""
        return [rpc for rpc, _ in self._undo.values()]

    def cleanup(self) -> list[str]:
        """Undo everything still recorded, newest first; return what could not be undone."""
        problems: list[str] = []
        for key, (rpc, request) in reversed(list(self._undo.items())):
            try:
                self.driver.raw(rpc, request)
            except grpc.RpcError as exc:
                code, details = rpc_error(exc)
                problems.append(f"cleanup {rpc} for {key[1]}: {code.name}: {details}")
        self._undo.clear()
        for path in reversed(self._dirs):
            for candidate in (path / "mount", path):
                with contextlib.suppress(OSError):
                    candidate.rmdir()
        self._dirs.clear()
        return problems
