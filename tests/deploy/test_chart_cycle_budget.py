"""The chart's cycle budget and the timeouts that must outlast the worst case it allows.

The worst case one ControllerPublish can meet: the volume is moving, so its old instance is
cycled to detach it, then the new one to attach it. Each cycle starts at most one batch window
(60 s, the plugin's maximum) after its first operation, may wait for the guest's graceful
power-off (``gracefulPowerOff.stopTimeout``, when enabled) and is then bounded by
``controller.attachCycleTimeout`` from the stop on (stop, attach/detach, start with its retries
after 507; the plugin does not count a wait for a budget slot against it). The attacher's
timeout must outlast that, so one call sees the result; so must the controller's termination
grace, so SIGTERM never ends in a SIGKILL while an instance is off on the plugin's account.
The figures are computed here from the values, apart from the chart's own arithmetic.
"""

from __future__ import annotations

from typing import Any

import pytest

from oxide_csi.config import ControllerSettings
from tests.deploy.chart import args_dict, containers, controller, env_dict, pod_spec, render

MAX_BATCH_WINDOW = 60  # the plugin refuses a longer --attach-batch-window
DEFAULTS = {"shutdownGrace": 30, "attachCycleTimeout": 600, "stopTimeout": 120}

CASES: list[dict[str, Any]] = [
    {},
    {"gracefulPowerOff": {"enabled": True}},
    {"gracefulPowerOff": {"enabled": True, "stopTimeout": 300}},
    {"gracefulPowerOff": {"enabled": False, "stopTimeout": 900}},
    {"controller": {"attachCycleTimeout": 1800, "shutdownGrace": 5}},
    {"controller": {"attachCycleTimeout": 30}, "gracefulPowerOff": {"enabled": True}},
]


def worst_publish(values: dict[str, Any]) -> int:
    """Seconds: a detach cycle, then an attach cycle, each at its longest."""
    graceful = values.get("gracefulPowerOff", {})
    wait = graceful.get("stopTimeout", DEFAULTS["stopTimeout"]) if graceful.get("enabled") else 0
    cycle = values.get("controller", {}).get("attachCycleTimeout", DEFAULTS["attachCycleTimeout"])
    return 2 * (MAX_BATCH_WINDOW + int(wait) + int(cycle))


def seconds(duration: str) -> int:
    assert duration.endswith("s") and duration[:-1].isdigit(), duration
    return int(duration[:-1])


@pytest.mark.parametrize("values", CASES)
def test_attacher_timeout_outlasts_a_detach_then_an_attach_cycle(values: dict[str, Any]) -> None:
    attacher = args_dict(containers(controller(render(values)))["csi-attacher"])
    timeout = seconds(attacher["timeout"])
    assert timeout >= worst_publish(values) + 60  # and a margin for the calls around the cycles
    assert timeout == worst_publish(values) + 120


@pytest.mark.parametrize("values", CASES)
def test_termination_grace_outlasts_the_worst_case(values: dict[str, Any]) -> None:
    deployment = controller(render(values))
    grace = values.get("controller", {}).get("shutdownGrace", DEFAULTS["shutdownGrace"])
    period = pod_spec(deployment)["terminationGracePeriodSeconds"]
    assert period >= grace + worst_publish(values)
    assert period == grace + worst_publish(values) + 10


def test_graceful_wait_lengthens_both() -> None:
    plain = controller(render())
    graceful = controller(render({"gracefulPowerOff": {"enabled": True}}))
    assert (
        pod_spec(graceful)["terminationGracePeriodSeconds"]
        - pod_spec(plain)["terminationGracePeriodSeconds"]
    ) == 2 * DEFAULTS["stopTimeout"]


def test_an_explicit_attacher_timeout_wins() -> None:
    values = {"sidecars": {"attacher": {"timeout": "45m"}}}
    assert args_dict(containers(controller(render(values)))["csi-attacher"])["timeout"] == "45m"


@pytest.mark.parametrize(
    ("value", "expected"), [(None, ControllerSettings.max_concurrent_cycles), (5, 5)]
)
def test_max_concurrent_cycles_reaches_the_plugin(value: int | None, expected: int) -> None:
    values = {} if value is None else {"controller": {"maxConcurrentCycles": value}}
    env = env_dict(containers(controller(render(values)))["oxide-csi"])
    assert env["OXIDE_CSI_MAX_CONCURRENT_CYCLES"]["value"] == str(expected)


@pytest.mark.parametrize("value", [0, "two"])
def test_max_concurrent_cycles_is_a_positive_whole_number(value: object) -> None:
    with pytest.raises(Exception, match="maxConcurrentCycles"):
        render({"controller": {"maxConcurrentCycles": value}})
