"""Serve a fake driver on a unix socket in this process and run checks against it.

Every run also proves the resource tracker: whatever the check made -- even when it failed
halfway -- is gone from the fake's state after cleanup.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from oxide_csi.csi_v1 import csi_pb2_grpc
from tests.sanity.checks import Check
from tests.sanity.driver import CheckFailed, Driver
from tests.sanity.fakes.controller import FakeController, FakeIdentity, FakeState
from tests.sanity.fakes.node import FakeNode
from tests.sanity.resources import Resources
from tests.sanity.settings import SanityConfig


def broken_cases(cases: Sequence[tuple[Check, type[Any], str]]) -> pytest.MarkDecorator:
    """Parametrize a meta-test over (check, broken fake servicer, what the failure says),
    with ids naming the check and the fake."""
    return pytest.mark.parametrize(
        ("check", "broken", "match"),
        cases,
        ids=[f"{c.__name__}-{b.__name__}" for c, b, _ in cases],
    )


@dataclass
class FakeDriver:
    driver: Driver
    state: FakeState
    server: grpc.Server
    channel: grpc.Channel

    def run(self, check: Check) -> None:
        """Run ``check``; clean up after it whatever happens, and insist nothing is left."""
        resources = Resources(self.driver)
        try:
            check(self.driver, resources)
        finally:
            problems = resources.cleanup()
            assert problems == [], problems
            self.assert_empty()

    def run_expecting_failure(self, check: Check, match: str) -> None:
        """Run ``check`` against this (broken) fake: it must fail with ``match`` in its text."""
        with pytest.raises(CheckFailed, match=match):
            self.run(check)

    def assert_empty(self) -> None:
        state = self.state
        leftovers = {
            "volumes": list(state.volumes),
            "snapshots": list(state.snapshots),
            "published": {v: n for v, n in state.published.items() if n},
            "staged": list(state.staged),
            "node_published": list(state.node_published),
        }
        assert not any(leftovers.values()), f"the check left resources behind: {leftovers}"

    def close(self) -> None:
        self.channel.close()
        self.server.stop(None)


def start_fake(
    root: Path,
    *,
    identity: type[FakeIdentity] = FakeIdentity,
    controller: type[FakeController] = FakeController,
    node: type[FakeNode] = FakeNode,
) -> FakeDriver:
    state = FakeState()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    csi_pb2_grpc.add_IdentityServicer_to_server(identity(), server)
    csi_pb2_grpc.add_ControllerServicer_to_server(controller(state), server)
    csi_pb2_grpc.add_NodeServicer_to_server(node(state), server)
    endpoint = f"unix://{root / 'fake.sock'}"
    server.add_insecure_port(endpoint)
    server.start()
    channel = grpc.insecure_channel(endpoint)
    driver = Driver(
        channel,
        SanityConfig(),
        staging_dir=root / "staging",
        target_dir=root / "target",
        timeout=10.0,
    )
    return FakeDriver(driver=driver, state=state, server=server, channel=channel)
