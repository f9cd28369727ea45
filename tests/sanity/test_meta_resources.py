"""The resource tracker undoes what a failing check made, newest first, and reports what it
could not undo -- so one failing conformance check never leaks into the next."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import grpc
import pytest

from tests.sanity.checks.common import attach
from tests.sanity.driver import CheckFailed, Driver, mount_capability
from tests.sanity.fakes.controller import FakeController
from tests.sanity.fakes.harness import FakeDriver
from tests.sanity.fakes.node import FakeNode
from tests.sanity.resources import Resources

CALLS: list[str] = []


class RecordingController(FakeController):
    def DeleteVolume(self, request: Any, context: Any) -> Any:
        CALLS.append("DeleteVolume")
        return super().DeleteVolume(request, context)

    def ControllerUnpublishVolume(self, request: Any, context: Any) -> Any:
        CALLS.append("ControllerUnpublishVolume")
        return super().ControllerUnpublishVolume(request, context)

    def DeleteSnapshot(self, request: Any, context: Any) -> Any:
        CALLS.append("DeleteSnapshot")
        return super().DeleteSnapshot(request, context)


class RecordingNode(FakeNode):
    def NodeUnstageVolume(self, request: Any, context: Any) -> Any:
        CALLS.append("NodeUnstageVolume")
        return super().NodeUnstageVolume(request, context)

    def NodeUnpublishVolume(self, request: Any, context: Any) -> Any:
        CALLS.append("NodeUnpublishVolume")
        return super().NodeUnpublishVolume(request, context)


@pytest.fixture
def recording(fake_driver: Callable[..., FakeDriver]) -> FakeDriver:
    CALLS.clear()
    return fake_driver(controller=RecordingController, node=RecordingNode)


def fails_halfway(d: Driver, r: Resources) -> None:
    volume = r.new_volume("halfway")
    r.create_snapshot(volume.volume_id, "sanity-halfway-snapshot")
    attach(d, r, volume, mount_capability())
    raise CheckFailed("boom")


def test_failing_check_is_undone_newest_first(recording: FakeDriver) -> None:
    with pytest.raises(CheckFailed, match="boom"):
        recording.run(fails_halfway)  # run() also insists the fake is empty afterwards
    assert CALLS == [
        "NodeUnpublishVolume",
        "NodeUnstageVolume",
        "ControllerUnpublishVolume",
        "DeleteSnapshot",
        "DeleteVolume",
    ]


def test_undone_by_the_check_is_not_undone_again(recording: FakeDriver) -> None:
    def deletes_its_volume(d: Driver, r: Resources) -> None:
        volume = r.new_volume("tidy")
        r.delete_volume(volume.volume_id)
        assert r.pending() == []

    recording.run(deletes_its_volume)
    assert CALLS == ["DeleteVolume"]


def test_unexpected_success_is_undone(recording: FakeDriver) -> None:
    """A create that should have failed but did not still gets cleaned up."""

    def expects_refusal(d: Driver, r: Resources) -> None:
        request = d.volume_request("sanity-should-be-refused")
        r.expect_error(grpc.StatusCode.ALREADY_EXISTS, "CreateVolume", request, "on purpose")

    with pytest.raises(CheckFailed, match="expected ALREADY_EXISTS, got OK"):
        recording.run(expects_refusal)
    assert CALLS == ["DeleteVolume"]


class UndeletableController(FakeController):
    def DeleteVolume(self, request: Any, context: Any) -> Any:
        context.abort(grpc.StatusCode.INTERNAL, "disk is stuck")


def test_cleanup_reports_what_it_could_not_undo(fake_driver: Callable[..., FakeDriver]) -> None:
    fake = fake_driver(controller=UndeletableController)
    resources = Resources(fake.driver)
    volume = resources.new_volume("stuck")
    problems = resources.cleanup()
    assert problems == [f"cleanup DeleteVolume for {volume.volume_id}: INTERNAL: disk is stuck"]
    fake.state.volumes.clear()


def test_secrets_are_sent_but_never_shown(fake_driver: Callable[..., FakeDriver]) -> None:
    seen: list[dict[str, str]] = []

    class Refusing(FakeController):
        def CreateVolume(self, request: Any, context: Any) -> Any:
            seen.append(dict(request.secrets))
            context.abort(grpc.StatusCode.UNAVAILABLE, "try later")

    fake = fake_driver(controller=Refusing)
    fake.driver.config = replace(fake.driver.config, secrets={"token": "hunter2-secret"})
    resources = Resources(fake.driver)
    with pytest.raises(CheckFailed) as caught:
        resources.new_volume("secret")
    assert seen == [{"token": "hunter2-secret"}]
    assert "hunter2" not in str(caught.value)
    assert "hunter2" not in repr(fake.driver.config)
