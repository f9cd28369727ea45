"""The chart lets a power cycle finish: SIGTERM never cuts one that has stopped an instance.

The plugin keeps a cycle that has stopped its instance running after SIGTERM until the
instance is started again, bounded by ``controller.attachCycleTimeout`` (start retries
included). The pod's termination grace period must cover the shutdown grace for calls, that
bound and the longest batch window the plugin accepts (60 s), or the kubelet's SIGKILL would
cut the cycle anyway; and a rollout must never run an old and a new controller at once.
"""

from __future__ import annotations

import pytest

from oxide_csi.config import DEFAULT_CYCLE_TIMEOUT
from tests.deploy.chart import containers, controller, env_dict, pod_spec, render

MAX_BATCH_WINDOW = 60  # the plugin refuses a longer --attach-batch-window


@pytest.mark.parametrize(
    ("values", "grace", "cycle"),
    [
        ({}, 30, int(DEFAULT_CYCLE_TIMEOUT)),
        ({"shutdownGrace": 5, "attachCycleTimeout": 1800}, 5, 1800),
    ],
)
def test_termination_grace_covers_the_longest_cycle(
    values: dict[str, int], grace: int, cycle: int
) -> None:
    deployment = controller(render({"controller": values}))
    plugin = containers(deployment)["oxide-csi"]
    env = env_dict(plugin)
    assert env["OXIDE_CSI_ATTACH_CYCLE_TIMEOUT"]["value"] == str(cycle)
    assert env["CSI_SHUTDOWN_GRACE"]["value"] == str(grace)
    period = pod_spec(deployment)["terminationGracePeriodSeconds"]
    assert period >= grace + cycle + MAX_BATCH_WINDOW
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}


def test_controller_instance_id_is_passed_only_when_set() -> None:
    default = env_dict(containers(controller(render()))["oxide-csi"])
    assert "OXIDE_CSI_CONTROLLER_INSTANCE_ID" not in default  # the plugin reads DMI
    for value in ("none", "7d1e8a0c-5b2f-4c61-9a83-0f4e6b2d9c17"):
        rendered = render({"controller": {"controllerInstanceId": value}})
        env = env_dict(containers(controller(rendered))["oxide-csi"])
        assert env["OXIDE_CSI_CONTROLLER_INSTANCE_ID"]["value"] == value


def test_controller_instance_id_must_be_a_uuid_or_none() -> None:
    with pytest.raises(Exception, match="controllerInstanceId"):
        render({"controller": {"controllerInstanceId": "node-1"}})


def test_liveness_is_not_tied_to_the_oxide_api() -> None:
    """The livenessprobe sidecar calls Probe, which answers without Oxide (see the plugin's
    test_liveness_process); the chart keeps liveness on that sidecar."""
    plugin = containers(controller(render()))["oxide-csi"]
    assert plugin["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "healthz"}
