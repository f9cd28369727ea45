"""Authentication and the per-token network cut: one controller loses the API server while
another (and Oxide) stay reachable."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx
import pytest
from lightkube import AsyncClient
from lightkube.resources.core_v1 import ConfigMap

from kube_sim import KubeSim
from tests.kube_sim.conftest import TOKENS, cm_path

A, B = TOKENS


def _client(sim: KubeSim, token: str | None) -> httpx.Client:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=sim.url, headers=headers, timeout=30)


def _until(condition: Callable[[], bool]) -> None:
    """Wait for a condition another thread makes true (bounded by the test timeout)."""
    while not condition():
        time.sleep(0.01)


def test_tokens_are_required(sim: KubeSim) -> None:
    with _client(sim, None) as anonymous, _client(sim, "stranger") as stranger:
        r = anonymous.get(cm_path())
        assert (r.status_code, r.json()["reason"]) == (401, "Unauthorized")
        assert stranger.get(cm_path()).status_code == 401
        assert anonymous.get("/version").status_code == 200
    sim.add_token("late-comer")
    with _client(sim, "late-comer") as late:
        assert late.get(cm_path()).status_code == 200


def test_reset_cuts_one_token_only(sim: KubeSim) -> None:
    with _client(sim, A) as a, _client(sim, B) as b:
        sim.block(A, mode="reset")
        with pytest.raises(httpx.RemoteProtocolError):
            a.get(cm_path())
        assert b.get(cm_path()).status_code == 200
        sim.unblock(A)
        assert a.get(cm_path()).status_code == 200
    assert [r.status for r in sim.requests if r.token == A] == [0, 200]


def test_hang_gives_no_answer_until_unblocked(sim: KubeSim) -> None:
    outcome: list[BaseException | int] = []

    def hung_request() -> None:
        with _client(sim, A) as a:
            try:
                outcome.append(a.post(cm_path(), json={"metadata": {"name": "x"}}).status_code)
            except httpx.HTTPError as e:
                outcome.append(e)

    sim.block(A)
    worker = threading.Thread(target=hung_request)
    worker.start()
    _until(lambda: any(r.token == A for r in sim.requests))
    with _client(sim, B) as b:  # the other controller is served meanwhile
        assert b.post(cm_path(), json={"metadata": {"name": "y"}}).status_code == 201
    assert outcome == [] and worker.is_alive()
    sim.unblock(A)
    worker.join(timeout=30)
    assert len(outcome) == 1 and isinstance(outcome[0], httpx.RemoteProtocolError)
    assert sim.get("v1", "ConfigMap", "x", "oxide-csi") is None  # the cut write never landed


def test_blocked_watch_is_closed(sim: KubeSim) -> None:
    lines: list[str] = []
    ended = threading.Event()

    def watch() -> None:
        with _client(sim, A) as a:
            try:
                with a.stream("GET", cm_path(), params={"watch": "1"}) as r:
                    for line in r.iter_lines():
                        lines.append(line)
            except httpx.HTTPError:
                lines.append("<cut>")
        ended.set()

    threading.Thread(target=watch, daemon=True).start()
    _until(lambda: any(r.token == A and "watch" in r.query for r in sim.requests))
    sim.block(A, mode="reset")
    assert ended.wait(30)
    assert lines == ["<cut>"]


async def test_lightkube_client_of_a_blocked_token_fails(sim: KubeSim, client: AsyncClient) -> None:
    assert [c async for c in client.list(ConfigMap)] == []
    sim.block(A, mode="reset")
    with pytest.raises(Exception) as err:
        await client.get(ConfigMap, "anything")
    assert "disconnected" in str(err.value).lower()
    sim.unblock(A)
    assert [c async for c in client.list(ConfigMap)] == []


def test_injected_errors_match_and_run_out(sim: KubeSim) -> None:
    sim.inject_error(503, token=A, method="POST", path_contains="/configmaps", times=2)
    with _client(sim, A) as a, _client(sim, B) as b:
        for _ in range(2):
            r = a.post(cm_path(), json={"metadata": {"name": "x"}})
            assert (r.status_code, r.json()["reason"]) == (503, "ServiceUnavailable")
        assert sim.get("v1", "ConfigMap", "x", "oxide-csi") is None  # nothing was written
        assert b.post(cm_path(), json={"metadata": {"name": "y"}}).status_code == 201
        assert a.get(cm_path("y")).status_code == 200  # GET does not match
        assert a.post(cm_path(), json={"metadata": {"name": "x"}}).status_code == 201


def test_injected_error_after_the_write_landed(sim: KubeSim) -> None:
    sim.inject_error(504, method="PUT", landed=True, times=-1)
    with _client(sim, A) as a:
        cm = a.post(cm_path(), json={"metadata": {"name": "x"}, "data": {"v": "1"}}).json()
        cm["data"] = {"v": "2"}
        assert a.put(cm_path("x"), json=cm).status_code == 504
        assert a.get(cm_path("x")).json()["data"] == {"v": "2"}  # it happened all the same
        # the retry carries the old resourceVersion: the conflict comes before the fault
        assert a.put(cm_path("x"), json=cm).status_code == 409
        cm["metadata"].pop("resourceVersion")
        assert a.put(cm_path("x"), json=cm).status_code == 504  # times=-1: every time
        sim.clear_injected_errors()
        assert a.put(cm_path("x"), json=cm).status_code == 200


def test_dry_run_is_refused_not_written(sim: KubeSim) -> None:
    with _client(sim, A) as a:
        r = a.post(cm_path(), params={"dryRun": "All"}, json={"metadata": {"name": "x"}})
        assert r.status_code == 400
    assert sim.get("v1", "ConfigMap", "x", "oxide-csi") is None


def test_restart_keeps_address_and_objects(sim: KubeSim) -> None:
    url = sim.url
    with _client(sim, A) as a:
        created = a.post(cm_path(), json={"metadata": {"name": "x"}}).json()
        sim.stop()
        with pytest.raises(httpx.TransportError):
            a.get(cm_path("x"))
        sim.start()
        assert sim.url == url
        again = a.get(cm_path("x")).json()
        assert again["metadata"]["uid"] == created["metadata"]["uid"]
