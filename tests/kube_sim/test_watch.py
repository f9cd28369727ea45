"""Watches: ADDED/MODIFIED/DELETED as JSON lines, selector transitions, resuming, 410."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import httpx
from lightkube import AsyncClient
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap

from kube_sim import KubeSim
from tests.kube_sim.conftest import NAMESPACE, cm_path


def _lines(http: httpx.Client, params: dict[str, str]) -> Iterator[dict[str, object]]:
    with http.stream("GET", cm_path(), params={"watch": "1", **params}) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line:
                yield json.loads(line)


def _events(http: httpx.Client, params: dict[str, str]) -> list[tuple[object, object]]:
    out = []
    for ev in _lines(http, params):
        obj = ev["object"]
        assert isinstance(obj, dict)
        out.append((ev["type"], obj.get("metadata", {}).get("name", obj.get("code"))))
    return out


def test_watch_replays_from_a_resource_version_with_selector_transitions(
    http: httpx.Client,
) -> None:
    start = http.get(cm_path()).json()["metadata"]["resourceVersion"]
    cm = http.post(cm_path(), json={"metadata": {"name": "a", "labels": {"s": "x"}}}).json()
    cm["metadata"]["labels"] = {"s": "y"}  # leaves the selector: DELETED for that watch
    cm = http.put(cm_path("a"), json=cm).json()
    cm["metadata"]["labels"] = {"s": "x"}  # comes back: ADDED
    cm = http.put(cm_path("a"), json=cm).json()
    cm["data"] = {"k": "v"}
    http.put(cm_path("a"), json=cm)
    http.delete(cm_path("a"))
    params = {"resourceVersion": start, "labelSelector": "s=x", "timeoutSeconds": "1"}
    assert _events(http, params) == [
        ("ADDED", "a"),
        ("DELETED", "a"),
        ("ADDED", "a"),
        ("MODIFIED", "a"),
        ("DELETED", "a"),
    ]


def test_watch_without_version_starts_with_what_exists(http: httpx.Client) -> None:
    http.post(cm_path(), json={"metadata": {"name": "b"}})
    http.post(cm_path(), json={"metadata": {"name": "a"}})
    assert _events(http, {"timeoutSeconds": "1"}) == [("ADDED", "a"), ("ADDED", "b")]


def test_too_old_resource_version_is_410() -> None:
    with (
        KubeSim(namespaces=[NAMESPACE], watch_history=3) as sim,
        httpx.Client(base_url=sim.url, timeout=10) as http,
    ):
        for i in range(6):
            http.post(cm_path(), json={"metadata": {"name": f"c{i}"}})
        rv = int(http.get(cm_path()).json()["metadata"]["resourceVersion"])
        assert _events(http, {"resourceVersion": str(rv - 6), "timeoutSeconds": "1"}) == [
            ("ERROR", 410)
        ]
        resumed = _events(http, {"resourceVersion": str(rv - 2), "timeoutSeconds": "1"})
        assert resumed == [("ADDED", "c4"), ("ADDED", "c5")]


async def test_lightkube_watch_sees_live_changes(client: AsyncClient, sim: KubeSim) -> None:
    got: list[tuple[str, str]] = []
    seen_three = asyncio.Event()

    async def follow() -> None:
        async for kind, obj in client.watch(ConfigMap):
            assert obj.metadata is not None and obj.metadata.name is not None
            got.append((kind, obj.metadata.name))
            if len(got) == 3:
                seen_three.set()
                return

    task = asyncio.create_task(follow())
    while not any("watch=" in r.query for r in sim.requests) and not task.done():
        await asyncio.sleep(0.01)
    await client.create(ConfigMap(metadata=ObjectMeta(name="s")))
    await client.patch(ConfigMap, "s", {"data": {"a": "b"}})
    await client.delete(ConfigMap, "s")
    await asyncio.wait_for(seen_three.wait(), 10)
    await task
    assert got == [("ADDED", "s"), ("MODIFIED", "s"), ("DELETED", "s")]
