"""The Lease hold's arithmetic, on a clock we move by hand: when a change may go, with which
deadline, and when the hold counts as lost although the renewing task has not said so."""

from __future__ import annotations

import pytest
from lightkube.resources.coordination_v1 import Lease

from oxide_csi.controller.attach.fence import FenceLost
from oxide_csi.kube.leases import LeaseHold
from oxide_csi.kube.settings import KubeSettings

SETTINGS = KubeSettings(
    namespace="ns", kubeconfig=None, identity="me", lease_seconds=30, oxide_call_seconds=30
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def hold(clock: Clock) -> LeaseHold:
    return LeaseHold("inst", Lease(), SETTINGS, renewed_at=clock.now, clock=clock)


def test_timings_follow_from_the_lease_duration() -> None:
    assert SETTINGS.renew_period == 5
    assert SETTINGS.renew_deadline == 20
    assert SETTINGS.renew_deadline < SETTINGS.lease_seconds
    assert SETTINGS.min_change_seconds == 10  # D - R: what is left when we may still act
    assert SETTINGS.takeover_after == 60  # D + the longest Oxide call


def test_a_change_never_gets_a_deadline_past_the_lease() -> None:
    clock = Clock()
    held = hold(clock)
    assert held.change_deadline(clock.now + 600) == clock.now + 30
    assert held.change_deadline(clock.now + 5) == clock.now + 5  # the cycle's is earlier


def test_too_little_lease_left_refuses_the_change() -> None:
    clock = Clock()
    held = hold(clock)
    clock.now += 19.5  # 10.5 s left: enough
    held.change_deadline(clock.now + 600)
    clock.now += 0.6  # past the renew deadline: lost, whatever the renewer thinks
    with pytest.raises(FenceLost, match="lost the lease"):
        held.change_deadline(clock.now + 600)
    assert held.lost


def test_a_renewal_extends_the_hold() -> None:
    clock = Clock()
    held = hold(clock)
    clock.now += 15
    held.renewed_at = clock.now
    clock.now += 15
    assert held.change_deadline(clock.now + 600) == held.renewed_at + 30


def test_a_lost_hold_stays_lost() -> None:
    clock = Clock()
    held = hold(clock)
    held.lose("the Lease was changed by someone else")
    held.renewed_at = clock.now
    with pytest.raises(FenceLost, match="changed by someone else"):
        held.change_deadline(clock.now + 600)
