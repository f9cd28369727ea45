"""Fixtures of the conformance suite: one driver for the session, one tracker per test.

By default the session starts ``oxide-csi dev`` in a fresh temporary directory (reused by every
test: it starts in about a second, but once is enough) and stops it at the end; with
``OXIDE_CSI_SANITY_ENDPOINT`` set it talks to that driver instead and starts nothing. See
``tests/sanity/settings.py`` for the other settings.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest

from oxide_csi.csi_v1 import csi_pb2
from tests.sanity.devserver import DevServer, make_root
from tests.sanity.driver import Driver
from tests.sanity.fakes.harness import FakeDriver, start_fake
from tests.sanity.resources import Resources
from tests.sanity.settings import SanityConfig

READY_TIMEOUT = 60.0


@pytest.fixture(scope="session")
def sanity_config() -> SanityConfig:
    return SanityConfig.from_env(os.environ)


def _grpc_target(endpoint: str) -> str:
    """CSI endpoints are written ``unix:///path`` or ``tcp://host:port``; grpc wants
    ``unix:///path`` or ``host:port``."""
    return endpoint.removeprefix("tcp://")


def _wait_probe_ready(driver: Driver) -> None:
    """Probe until the plugin says it is ready (an absent ``ready`` means ready)."""
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        reply = driver.ok("Probe", csi_pb2.ProbeRequest())
        if not reply.HasField("ready") or reply.ready.value:
            return
        if time.monotonic() > deadline:
            raise TimeoutError("the driver's Probe did not report ready in time")
        time.sleep(0.2)


@pytest.fixture(scope="session")
def driver(sanity_config: SanityConfig) -> Iterator[Driver]:
    if sanity_config.endpoint:
        yield from _external_driver(sanity_config)
    else:
        yield from _dev_driver(sanity_config)


def _external_driver(config: SanityConfig) -> Iterator[Driver]:
    scratch = make_root()
    channel = grpc.insecure_channel(_grpc_target(config.endpoint or ""))
    try:
        handle = Driver(
            channel,
            config,
            staging_dir=config.staging_dir or scratch / "staging",
            target_dir=config.target_dir or scratch / "target",
        )
        _wait_probe_ready(handle)
        yield handle
    finally:
        channel.close()
        shutil.rmtree(scratch, ignore_errors=True)


def _dev_driver(config: SanityConfig) -> Iterator[Driver]:
    root = make_root()
    server = DevServer(root)
    channel: grpc.Channel | None = None
    try:
        channel = server.start()
        kubelet = server.kubelet_dir
        handle = Driver(
            channel,
            config,
            staging_dir=config.staging_dir or kubelet / "plugins/kubernetes.io/csi/sanity",
            target_dir=config.target_dir or kubelet / "pods",
        )
        _wait_probe_ready(handle)
        yield handle
    finally:
        if channel is not None:
            channel.close()
        code = server.stop()
        leftovers = server.leftovers()
        log = server.log()
        shutil.rmtree(root, ignore_errors=True)
    problems = []
    if code != 0:
        problems.append(f"oxide-csi dev ended with exit code {code} after SIGTERM")
    if leftovers:
        problems.append("left behind after the driver stopped: " + "; ".join(leftovers))
    if problems:
        pytest.fail("\n".join(problems) + f"\n--- driver log (tail) ---\n{log}", pytrace=False)


@pytest.fixture
def resources(driver: Driver) -> Iterator[Resources]:
    tracker = Resources(driver)
    yield tracker
    problems = tracker.cleanup()
    if problems:
        pytest.fail("cleanup failed:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture
def fake_driver() -> Iterator[Callable[..., FakeDriver]]:
    """Start in-process fake drivers (for the meta-tests); stopped after the test."""
    root = make_root()
    started: list[FakeDriver] = []

    def start(**servicers: Any) -> FakeDriver:
        directory = root / f"fake{len(started)}"
        directory.mkdir()
        fake = start_fake(directory, **servicers)
        started.append(fake)
        return fake

    try:
        yield start
    finally:
        for fake in started:
            fake.close()
        shutil.rmtree(root, ignore_errors=True)
