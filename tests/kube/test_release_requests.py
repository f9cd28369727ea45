"""``oxide-csi release-instance`` through the Kubernetes backend: the request is a ConfigMap the
tool writes, the controller's loop answers in place (what was released, or why not), and the
tool reads the answer; against the test API server."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from kube_sim import KubeSim
from oxide_csi import errors
from oxide_csi.controller.attach.release_requests import answer_requests, new_request
from oxide_csi.kube.release_requests import KubeReleaseRequests
from tests.kube.harness import NAMESPACE
from tests.kube.inproc import client_for, controller_settings


class Releaser:
    """Releases ``disk-a`` of ``node-a``; any other instance does not exist."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def release_instance(self, instance: str, *, deadline: float) -> list[str]:
        self.asked.append(instance)
        if instance != "node-a":
            raise errors.NotFound(f"instance {instance!r} does not exist")
        return ["disk-a"]


async def test_requests_are_answered_in_place(kube: KubeSim, tmp_path: Path) -> None:
    async with (
        client_for(controller_settings(kube, tmp_path, "tool")) as tool_client,
        client_for(controller_settings(kube, tmp_path, "ctl")) as ctl_client,
    ):
        tool = KubeReleaseRequests(tool_client, NAMESPACE)
        ok, missing = new_request("node-a"), new_request("node-x")
        await tool.put(ok)
        await tool.put(missing)
        assert sorted(r.instance for r in await tool.pending()) == ["node-a", "node-x"]

        releaser = Releaser()
        loop = asyncio.create_task(
            answer_requests(
                releaser,
                KubeReleaseRequests(ctl_client, NAMESPACE),
                interval=0.05,
                cycle_timeout=30,
            )
        )
        try:
            for _ in range(400):
                if not await tool.pending():
                    break
                await asyncio.sleep(0.05)
        finally:
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop
        done = await tool.get(ok.id)
        assert done is not None and done.done is not None
        assert (done.released, done.error) == (("disk-a",), "")
        refused = await tool.get(missing.id)
        assert refused is not None and "does not exist" in refused.error
        assert sorted(releaser.asked) == ["node-a", "node-x"]  # each once
        await tool.delete(ok.id)
        await tool.delete(ok.id)  # gone is gone
        assert await tool.get(ok.id) is None
