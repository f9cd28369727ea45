"""The suite is honest about the Node service and the attach limit: each broken fake fails
its check. The lifecycle checks also fail against the (correct but mount-less) fake node:
a driver that only makes directories and files does not pass them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest

from tests.sanity.checks import Check, access_modes, lifecycle, limits, node
from tests.sanity.driver import CheckFailed
from tests.sanity.fakes.harness import FakeDriver, broken_cases
from tests.sanity.fakes.node import FakeNode


class StagesWithoutPath(FakeNode):
    def NodeStageVolume(self, request: Any, context: Any) -> Any:
        request.staging_target_path = request.staging_target_path or "/nowhere"
        return super().NodeStageVolume(request, context)


class UnstagesWithoutId(FakeNode):
    def NodeUnstageVolume(self, request: Any, context: Any) -> Any:
        request.volume_id = request.volume_id or "anything"
        return super().NodeUnstageVolume(request, context)


class PublishesWithoutCapability(FakeNode):
    def NodePublishVolume(self, request: Any, context: Any) -> Any:
        request.volume_capability.mount.fs_type = request.volume_capability.mount.fs_type
        return super().NodePublishVolume(request, context)


class KeepsTargetPath(FakeNode):
    def remove_target(self, path: str) -> None:
        pass


class StagesOverAnything(FakeNode):
    def NodeStageVolume(self, request: Any, context: Any) -> Any:
        self.state.staged.pop((request.volume_id, request.staging_target_path), None)
        return super().NodeStageVolume(request, context)


class PublishesUnstaged(FakeNode):
    """Treats a missing staging path as "whatever was staged"."""

    def NodePublishVolume(self, request: Any, context: Any) -> Any:
        if not request.staging_target_path:
            for volume_id, path in self.state.staged:
                if volume_id == request.volume_id:
                    request.staging_target_path = path
        return super().NodePublishVolume(request, context)


class RepublishesReadOnlyQuietly(FakeNode):
    def NodePublishVolume(self, request: Any, context: Any) -> Any:
        self.state.node_published.pop((request.volume_id, request.target_path), None)
        return super().NodePublishVolume(request, context)


class StatsUnknownIsInternal(FakeNode):
    def NodeGetVolumeStats(self, request: Any, context: Any) -> Any:
        if request.volume_id not in self.state.volumes:
            context.abort(grpc.StatusCode.INTERNAL, "KeyError")
        return super().NodeGetVolumeStats(request, context)


class StatsAnywhere(FakeNode):
    """Answers for a known volume at any path."""

    def NodeGetVolumeStats(self, request: Any, context: Any) -> Any:
        for volume_id, target in self.state.node_published:
            if volume_id == request.volume_id:
                request.volume_path = target
        return super().NodeGetVolumeStats(request, context)


class AnyNumberOfTargets(FakeNode):
    def check_second_target(self, request: Any, context: Any) -> None:
        pass


class NegativeLimit(FakeNode):
    max_volumes_per_node = -1


class PromisesTooLittle(FakeNode):
    """Says 2 volumes fit while the controller attaches 3: the limit is not kept."""

    max_volumes_per_node = 2


class PromisesTooMuch(FakeNode):
    """Says 4 volumes fit while the controller refuses the 4th."""

    max_volumes_per_node = 4


BROKEN: list[tuple[Check, type[FakeNode], str]] = [
    (node.stage_requires_staging_path, StagesWithoutPath, "without staging_target_path"),
    (node.unstage_requires_fields, UnstagesWithoutId, "without volume_id.*got OK"),
    (node.publish_requires_capability, PublishesWithoutCapability, "without volume_capability"),
    (node.stats_unknown_volume, StatsUnknownIsInternal, "got INTERNAL"),
    (node.node_info_fields, NegativeLimit, "negative"),
    (access_modes.single_writer_one_target, AnyNumberOfTargets, "second target.*got OK"),
    (lifecycle.stats_not_at_path, StatsAnywhere, "not at.*got OK"),
    (lifecycle.node_idempotency, KeepsTargetPath, "left the target path"),
    (lifecycle.node_idempotency, StagesOverAnything, "again as block.*got OK"),
    (lifecycle.node_idempotency, PublishesUnstaged, "without staging path.*got OK"),
    (lifecycle.node_idempotency, RepublishesReadOnlyQuietly, "read-only.*got OK"),
    (limits.attach_limit, PromisesTooLittle, "RESOURCE_EXHAUSTED, got OK"),
    (limits.attach_limit, PromisesTooMuch, "concurrent ControllerPublishVolume"),
]


@broken_cases(BROKEN)
def test_check_catches_broken_node(
    check: Check,
    broken: type[FakeNode],
    match: str,
    fake_driver: Callable[..., FakeDriver],
) -> None:
    fake_driver(node=broken).run_expecting_failure(check, match)


LIFECYCLE_WITHOUT_MOUNTS: list[tuple[Check, str]] = [
    (lifecycle.lifecycle_mount, "did not mount anything"),
    (lifecycle.lifecycle_block, "not a block device"),
    (lifecycle.publish_readonly_mount, "did not mount anything"),
    (lifecycle.restore_reads_data, "did not mount anything"),
    (lifecycle.clone_reads_data, "did not mount anything"),
    (access_modes.multi_writer_two_targets, "do not show the same files"),
]


@pytest.mark.parametrize(
    ("check", "match"),
    LIFECYCLE_WITHOUT_MOUNTS,
    ids=[c.__name__ for c, _ in LIFECYCLE_WITHOUT_MOUNTS],
)
def test_lifecycle_needs_real_mounts(
    check: Check, match: str, fake_driver: Callable[..., FakeDriver]
) -> None:
    fake = fake_driver()
    with pytest.raises(CheckFailed, match=match):
        fake.run(check)
