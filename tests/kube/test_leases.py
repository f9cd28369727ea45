"""The Lease per instance against the test API server: taken at once when free, waited for
when held, taken over only after it went unrenewed for the lease duration plus the longest
Oxide call, lost (and every change refused) when its holder cannot renew, released after use.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from kube_sim import KubeSim
from oxide_csi.controller.attach.fence import FenceLost
from oxide_csi.kube.leases import LeaseFence, LeaseUnavailable
from tests.kube.harness import NAMESPACE
from tests.kube.inproc import client_for, controller_settings

IID = "5b0c7e2a-1d9f-4c3b-8e6a-2f4d1c0b9a87"
LEASE = f"oxide-csi-instance-{IID}"


def lease_spec(kube: KubeSim) -> dict[str, object]:
    found = kube.get("coordination.k8s.io/v1", "Lease", LEASE, NAMESPACE)
    assert found is not None
    spec: dict[str, object] = found["spec"]
    return spec


async def test_free_lease_taken_and_released(kube: KubeSim, tmp_path: Path) -> None:
    settings = controller_settings(kube, tmp_path, "a")
    async with client_for(settings) as client:
        fence = LeaseFence(client, settings)
        assert fence.shared  # others may act on the instance: work is rechecked before a stop
        async with fence.hold(IID, deadline=time.monotonic() + 10) as held:
            assert lease_spec(kube)["holderIdentity"] == "ctl-a"
            assert lease_spec(kube)["leaseDurationSeconds"] == 3
            deadline = time.monotonic() + 600
            assert held.change_deadline(deadline) < time.monotonic() + 3
        assert "holderIdentity" not in lease_spec(kube)
        async with fence.hold(IID, deadline=time.monotonic() + 10):
            assert lease_spec(kube)["holderIdentity"] == "ctl-a"  # free again: taken at once


async def test_a_held_lease_is_waited_for(kube: KubeSim, tmp_path: Path) -> None:
    sa, sb = controller_settings(kube, tmp_path, "a"), controller_settings(kube, tmp_path, "b")
    async with client_for(sa) as ca, client_for(sb) as cb:
        a, b = LeaseFence(ca, sa), LeaseFence(cb, sb)
        released = asyncio.Event()

        async def a_cycle() -> None:
            async with a.hold(IID, deadline=time.monotonic() + 10):
                await asyncio.sleep(1.5)  # a renews meanwhile (every 0.5 s)
                released.set()

        task = asyncio.create_task(a_cycle())
        await asyncio.sleep(0.2)
        async with b.hold(IID, deadline=time.monotonic() + 20):
            assert released.is_set()  # b got it only once a let go
            assert lease_spec(kube)["holderIdentity"] == "ctl-b"
        await task
        assert lease_spec(kube)["leaseTransitions"] == 1


async def test_cut_off_holder_is_fenced_and_taken_over_only_after_the_wait(
    kube: KubeSim, tmp_path: Path
) -> None:
    sa, sb = controller_settings(kube, tmp_path, "a"), controller_settings(kube, tmp_path, "b")
    async with client_for(sa, timeout=1) as ca, client_for(sb) as cb:
        a, b = LeaseFence(ca, sa), LeaseFence(cb, sb)
        async with a.hold(IID, deadline=time.monotonic() + 10) as held_a:
            kube.block("inproc-a")  # a still "reaches Oxide": it keeps asking its hold
            cut = time.monotonic()
            lost_at: list[float] = []

            async def a_keeps_acting() -> None:
                while True:
                    try:
                        held_a.change_deadline(time.monotonic() + 600)
                    except FenceLost:
                        lost_at.append(time.monotonic())
                        return
                    await asyncio.sleep(0.05)

            acting = asyncio.create_task(a_keeps_acting())
            async with b.hold(IID, deadline=time.monotonic() + 30):
                took = time.monotonic()
            await acting
            kube.unblock("inproc-a")
        # a stopped acting within the renew deadline (2 s) of its last renewal ...
        assert lost_at and lost_at[0] - cut <= sa.renew_deadline + 0.2
        # ... and b waited the lease duration plus the longest Oxide call after a's last
        # renewal (at most one renew period before the cut), so never while a could act.
        assert took - cut >= sb.takeover_after - sa.renew_period
        assert took > lost_at[0]
        assert lease_spec(kube)["leaseTransitions"] == 1


async def test_no_lease_before_the_deadline_is_unavailable(kube: KubeSim, tmp_path: Path) -> None:
    kube.create(
        {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": LEASE, "namespace": NAMESPACE},
            "spec": {"holderIdentity": "someone-else", "leaseDurationSeconds": 3},
        }
    )
    settings = controller_settings(kube, tmp_path, "a")
    async with client_for(settings) as client:
        with pytest.raises(LeaseUnavailable, match="someone-else"):
            async with LeaseFence(client, settings).hold(IID, deadline=time.monotonic() + 1):
                pass


def test_lease_times_always_carry_a_fraction(monkeypatch) -> None:
    """A MicroTime without a fraction is refused by the API server (and by kube_sim)."""
    from datetime import UTC, datetime

    from lightkube.models.coordination_v1 import LeaseSpec

    from oxide_csi.kube import leases

    whole = datetime(2026, 12, 2, 20, 0, 5, 0, tzinfo=UTC)

    class _Clock(datetime):
        @classmethod
        def now(cls, tz=None):
            return whole

    monkeypatch.setattr(leases, "datetime", _Clock)
    stamp = leases.micro_now()
    assert stamp.microsecond == 1
    rendered = LeaseSpec(renewTime=stamp).to_dict()["renewTime"]
    assert "." in rendered, rendered
