"""Retry policy over real HTTP: what is retried, how often, and how the deadline ends it.

Attempts are counted twice, independently: by the client's ``on_request`` hook and by the
simulator's own request counters (``/sim/stats``), so a retry that happens without being
reported (or the reverse) fails the test.
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
from pathlib import Path

import pytest

from oxide_csi.oxide import OxideClient, api_errors
from oxide_csi.oxide.retry import backoff_delay
from tests.oxide.conftest import ClientFactory
from tests.oxide.simkit import GIB, Attempt, Sim, client_config, deadline_in, lift_faults_after

ME = "GET /v1/projects/{project}"  # the cheapest request the client sends


@pytest.mark.parametrize(
    ("status", "cls"), [(503, api_errors.OxideUnavailable), (500, api_errors.OxideServerError)]
)
async def test_retries_are_bounded_by_max_attempts(
    sim: Sim, client_factory: ClientFactory, status: int, cls: type[api_errors.OxideError]
) -> None:
    client, rec = client_factory(sim, max_attempts=3)
    sim.faults(error_rate=1.0, error_statuses=[status])
    with pytest.raises(cls) as caught:
        await client.get_project()
    assert caught.value.attempt == 3
    assert [a.attempt for a in rec.attempts] == [1, 2, 3]
    assert sim.hits(ME) == 3


async def test_rate_limit_gives_rate_limited_after_max_attempts(
    sim: Sim, client_factory: ClientFactory
) -> None:
    client, rec = client_factory(sim, max_attempts=4)
    sim.faults(rate_limit_rate=1.0)
    with pytest.raises(api_errors.OxideRateLimited):
        await client.get_project()
    assert len(rec.attempts) == sim.hits("GET /v1/projects/{project}") == 4


async def test_transient_failures_are_ridden_out(sim: Sim, client_factory: ClientFactory) -> None:
    client, rec = client_factory(sim, max_attempts=20)
    sim.faults(error_rate=0.6, error_statuses=[500, 502, 503, 504], rate_limit_rate=0.5, seed=3)
    for _ in range(5):
        assert (await client.get_project()).id
    statuses = [a.status for a in rec.attempts]
    assert statuses.count(200) == 5
    assert set(statuses) - {200}, "the seed was meant to inject some failures"
    assert sim.hits(ME) == len(statuses)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 507])
async def test_client_errors_are_not_retried(
    sim: Sim, client_factory: ClientFactory, status: int
) -> None:
    client, rec = client_factory(sim)
    sim.faults(error_rate=1.0, error_statuses=[status])
    with pytest.raises(api_errors.OxideError) as caught:
        await client.get_instance("instance-0")
    assert caught.value.status == status
    assert len(rec.attempts) == sim.hits("GET /v1/instances/{instance}") == 1


@pytest.mark.parametrize(
    ("settings", "cls"),
    [
        ({"error_rate": 1.0, "error_statuses": [503]}, api_errors.OxideUnavailable),
        ({"rate_limit_rate": 1.0}, api_errors.OxideRateLimited),
        ({"drop_rate": 1.0}, api_errors.OxideUnavailable),
    ],
)
async def test_deadline_ends_retrying_with_timeout(
    sim: Sim,
    client_factory: ClientFactory,
    settings: dict[str, object],
    cls: type[api_errors.OxideError],
) -> None:
    # Many attempts allowed, backoff long enough that the deadline comes first.
    client, rec = client_factory(sim, max_attempts=1000, backoff_base=0.02, backoff_max=0.05)
    sim.faults(**settings)
    deadline = deadline_in(0.3)
    with pytest.raises(api_errors.OxideTimeout) as caught:
        await client.get_project(deadline=deadline)
    assert time.monotonic() >= deadline - 0.002  # gave up because of the deadline...
    assert isinstance(caught.value.last_error, cls)  # ...while retrying this failure
    assert 2 <= len(rec.attempts) < 1000
    assert "deadline exceeded" in str(caught.value)


async def test_passed_deadline_sends_nothing(sim: Sim, client: OxideClient) -> None:
    with pytest.raises(api_errors.OxideTimeout):
        await client.get_project(deadline=time.monotonic() - 1)
    assert sim.hits(ME) == 0


async def test_per_attempt_timeout_turns_a_stall_into_unavailable(
    sim: Sim, client_factory: ClientFactory
) -> None:
    client, rec = client_factory(sim, request_timeout=0.05, max_attempts=2)
    sim.faults(latency_ms=400, latency_rate=1.0)
    with pytest.raises(api_errors.OxideUnavailable) as caught:
        await client.get_project()
    assert caught.value.status is None
    assert [a.status for a in rec.attempts] == [None, None]


async def test_stall_at_the_deadline_is_a_timeout(sim: Sim, client_factory: ClientFactory) -> None:
    client, rec = client_factory(sim, request_timeout=5.0)
    sim.faults(latency_ms=400, latency_rate=1.0)
    with pytest.raises(api_errors.OxideTimeout):
        await client.get_project(deadline=deadline_in(0.1))
    assert len(rec.attempts) == 1


async def test_dropped_reads_are_retried(sim: Sim, client_factory: ClientFactory) -> None:
    client, rec = client_factory(sim, max_attempts=10)
    sim.faults(drop_rate=0.5, seed=11, path_regex="^/v1/projects/default$")
    for _ in range(4):
        await client.get_project()
    dropped = [a for a in rec.attempts if a.status is None]
    assert dropped, "the seed was meant to drop some requests"
    assert sim.hits(ME) == len(rec.attempts) == 4 + len(dropped)


async def test_delete_repeated_after_a_lost_answer_counts_as_done(
    sim: Sim, client_factory: ClientFactory
) -> None:
    client, rec = client_factory(sim)
    await client.create_disk("del-me", size=GIB)
    # The delete happens, the answer is lost; the repeat meets 404, which means "done".
    sim.faults(drop_rate=1.0, phase="after", path_regex="^/v1/disks/del-me$")
    rec.after = lift_faults_after(sim, "DELETE", "/v1/disks/{disk}")
    await client.delete_disk("del-me")
    assert [a.status for a in rec.attempts if a.method == "DELETE"] == [None, 404]
    assert sim.hits("DELETE /v1/disks/{disk}") == 2
    with pytest.raises(api_errors.OxideNotFound):
        await client.get_disk("del-me")


async def test_delete_of_a_missing_disk_is_not_found(sim: Sim, client: OxideClient) -> None:
    with pytest.raises(api_errors.OxideNotFound):
        await client.delete_disk("never-was")


async def test_connection_refused_is_unavailable_and_bounded(
    client_factory: ClientFactory, tmp_path: Path
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there now
    recorder: list[Attempt] = []
    cfg = client_config(f"http://127.0.0.1:{port}", max_attempts=3)

    def observe(method: str, template: str, status: int | None, sec: float, n: int) -> None:
        recorder.append(Attempt(method, template, status, n))

    async with OxideClient(cfg, on_request=observe) as client:
        with pytest.raises(api_errors.OxideUnavailable, match="ConnectError"):
            await client.get_project()
    assert [a.attempt for a in recorder] == [1, 2, 3]


def _established_to(port: int) -> int:
    """Established IPv4 TCP connections whose remote end is ``port`` on this host."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote_ip, remote_port = fields[2].split(":")
        # 0100007F is 127.0.0.1 as the kernel prints it; state 01 is ESTABLISHED.
        if remote_ip == "0100007F" and int(remote_port, 16) == port and fields[3] == "01":
            count += 1
    return count


async def test_connections_are_pooled(sim: Sim, client: OxideClient) -> None:
    port = sim.server.address[1]
    for _ in range(10):
        await client.get_project()
        await client.get_instance("instance-0")
    assert _established_to(port) == 1  # twenty sequential requests, one connection
    await client.aclose()
    assert _established_to(port) == 0  # closing the client closes its pool


async def test_observer_failure_never_fails_a_call(sim: Sim, client_factory: ClientFactory) -> None:
    client, rec = client_factory(sim)

    def broken(_: Attempt) -> None:
        raise RuntimeError("metrics bug")

    rec.after = broken
    assert (await client.get_project()).id
    assert len(rec.attempts) == 1


def test_backoff_is_exponential_with_full_jitter() -> None:
    rng = random.Random(1)
    for attempt, ceiling in [(1, 0.1), (2, 0.2), (3, 0.4), (4, 0.8), (5, 1.0), (9, 1.0)]:
        delays = [backoff_delay(attempt, 0.1, 1.0, rng) for _ in range(200)]
        assert all(0.0 <= d <= ceiling for d in delays)
        assert max(delays) > ceiling * 0.8  # spread over the whole interval...
        assert min(delays) < ceiling * 0.2  # ...from near zero


async def test_concurrent_calls_share_one_client(sim: Sim, client: OxideClient) -> None:
    names = await asyncio.gather(*(client.get_instance(f"instance-{i % 2}") for i in range(40)))
    assert sorted({i.name for i in names}) == ["instance-0", "instance-1"]
    assert sim.hits("GET /v1/instances/{instance}") == 40
