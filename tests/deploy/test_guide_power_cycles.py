"""The operator's guide says what a power cycle does to a cluster, and what to do when an
instance stays stopped: the facts an operator needs before the first production claim."""

from __future__ import annotations

import pytest

from tests.deploy.chart import REPO

GUIDE = (REPO / "docs" / "operator-guide.md").read_text()


def _section(title: str) -> str:
    """The text of the guide's section (any level) with this title, up to the next heading of
    the same or a higher level, with whitespace runs made single spaces."""
    lines = GUIDE.splitlines()
    starts = [n for n, line in enumerate(lines) if line.lstrip("#") == f" {title}"]
    assert starts, f"the guide has no section {title!r}"
    level = len(lines[starts[0]]) - len(lines[starts[0]].lstrip("#"))
    body = []
    for line in lines[starts[0] + 1 :]:
        hashes = len(line) - len(line.lstrip("#"))
        if 0 < hashes <= level and line[hashes:].startswith(" "):
            break
        body.append(line)
    return " ".join(" ".join(body).split())


@pytest.mark.parametrize(
    "fact",
    [
        "node.cloudprovider.kubernetes.io/shutdown",  # the Oxide CCM's shutdown taint
        "NotReady",
        "timed out\nwaiting for external-attacher",
        "podManagementPolicy: Parallel",
        "OrderedReady",
        "strategy: Recreate",
        "parallelism",
        "kubectl drain",
    ],
)
def test_what_a_cycle_does_to_the_cluster(fact: str) -> None:
    assert " ".join(fact.split()) in _section("What a power cycle does to the cluster")


def test_no_claim_that_a_default_statefulset_batches() -> None:
    """A default (OrderedReady) StatefulSet starts one pod at a time: one cycle per pod."""
    flat = " ".join(GUIDE.split())
    assert "ten volumes of a StatefulSet landing on one node cost one power cycle" not in flat
    assert "ten volumes of a *default* StatefulSet landing on one node do **not** cost one" in flat


@pytest.mark.parametrize(
    "fact", ["OxideInstanceLeftStopped", "oxide instance start", "fsck.ext4", "xfs_repair"]
)
def test_runbook_for_an_instance_left_stopped(fact: str) -> None:
    assert fact in _section("An instance stays stopped")


def test_compact_clusters_are_told_the_risk() -> None:
    text = _section("Nodes that are never power-cycled")
    assert "node.controlPlane.attachable: true" in text
    assert "quorum" in text
