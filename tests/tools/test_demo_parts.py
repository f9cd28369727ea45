"""The demo's parts on their own: how it tells a disk that is gone from one still to be
deleted at its instance's next cycle (real HTTP to the simulated rack), its live terminal view,
its instance watch, its undo stack."""

from __future__ import annotations

import io
import json
import uuid
from pathlib import Path

import pytest

from oxide_csi.tools.demo_check import CheckFailed, oxide_leftover
from oxide_csi.tools.kubelet_paths import make_dirs, remove_dirs
from oxide_csi.tools.oxide_view import InstanceWatch, OxideAccess, OxideView
from oxide_csi.tools.progress import OK, LiveReporter, StepResult
from oxide_csi.tools.undo import UndoStack
from tests.tools.conftest import Dev, run_cli


@pytest.fixture
def view(dev: Dev) -> OxideView:
    values = dev.env()
    return OxideView(
        OxideAccess(values["OXIDE_HOST"], values["OXIDE_TOKEN"], values["OXIDE_PROJECT"])
    )


def test_a_deleted_disk_still_attached_counts_as_gone_and_is_named(
    dev: Dev, view: OxideView
) -> None:
    # a disk that is still with its instance is what a deferred deletion leaves until the
    # instance's next cycle: the boot disk is one such disk
    boot = dev.oxide("/v1/disks/instance-0-boot")
    assert boot["state"]["state"] == "attached"
    assert oxide_leftover(view, "volume", boot["id"]) == [
        "disk instance-0-boot is still to be deleted at its instance's next cycle"
    ]
    assert oxide_leftover(view, "volume", str(uuid.uuid4())) == []  # gone
    assert oxide_leftover(view, "snapshot", str(uuid.uuid4())) == []


def test_a_deleted_disk_left_detached_is_a_failure(dev: Dev, view: OxideView) -> None:
    cap = {"mount": {}, "access_mode": {"mode": "SINGLE_NODE_WRITER"}}
    request = json.dumps({"name": "left-detached", "volume_capabilities": [cap]})
    created = run_cli("call", "Controller.CreateVolume", request, "--endpoint", dev.endpoint)
    volume_id = json.loads(created.stdout)["volume"]["volume_id"]
    try:
        with pytest.raises(CheckFailed, match=r"still in Oxide \(detached\)"):
            oxide_leftover(view, "volume", volume_id)
    finally:
        deleted = run_cli("call", "Controller.DeleteVolume", f'{{"volume_id": "{volume_id}"}}',
                          "--endpoint", dev.endpoint)  # fmt: skip
        assert deleted.returncode == 0, deleted.stderr


def test_instance_watch_sees_a_running_instance_and_reports_no_stop(
    dev: Dev, view: OxideView
) -> None:
    seen: list[str] = []
    node_id = dev.oxide("/v1/instances/instance-0")["id"]
    with InstanceWatch(view, node_id, lambda name, state: seen.append(f"{name} {state}")) as w:
        w.settle(5)  # nothing to wait for: the instance never went down
    assert seen == ["instance-0 running"]
    assert w.story() == "instance-0 stayed running (no stop)"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_live_view_redraws_one_line_per_step() -> None:
    out = _Terminal()
    reporter = LiveReporter(out)
    step = StepResult("attach")
    reporter.start(step)
    reporter.note("instance-0 stopping")
    step.outcome, step.seconds, step.detail = OK, 1.5, "down 0.7 s"
    reporter.finish(step)
    reporter.close()
    text = out.getvalue()
    assert text.startswith("\r\x1b[2K")  # each draw clears the line it rewrites
    assert text.endswith("\r\x1b[2K  ✓ attach        1.5 s  down 0.7 s\n")
    assert text.count("\n") == 1


def test_undo_runs_newest_first_and_keeps_what_failed() -> None:
    done: list[str] = []

    def fails() -> None:
        raise OSError("busy")

    undo = UndoStack()
    undo.push("a", "first", lambda: done.append("a"))
    undo.push("b", "second", fails)
    undo.push("c", "third", lambda: done.append("c"))
    undo.run("c")
    with pytest.raises(OSError):
        undo.run("b")
    assert [a.key for a in undo.pending()] == ["b", "a"]  # the failed one stays, to retry
    assert done == ["c"]


def test_directories_made_are_removed_but_never_a_full_one(tmp_path: Path) -> None:
    made = make_dirs(tmp_path / "pods/uid/volumes/pv/mount")
    assert made == [tmp_path / p for p in ("pods/uid/volumes/pv/mount", "pods/uid/volumes/pv",
                                           "pods/uid/volumes", "pods/uid", "pods")]  # fmt: skip
    (tmp_path / "pods/uid/keep").write_text("not ours")
    with pytest.raises(OSError):
        remove_dirs(made)
    assert (tmp_path / "pods/uid/keep").exists()
    assert not (tmp_path / "pods/uid/volumes").exists()
