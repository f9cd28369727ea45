"""The Oxide API's state as metrics: ``oxide_csi_oxide_api_up`` and, per reason, ``..._problem``.

A collector rather than gauges set on change: the values are read from the
:class:`~oxide_csi.backend_health.BackendHealth` at scrape time, so they can never disagree
with what the logs and the health service say. Every reason is always exported (0 or 1), so an
alert can match on ``reason`` without waiting for a series to appear.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from oxide_csi.backend_health import REASONS, BackendHealth
from oxide_csi.metrics.collectors import PREFIX


class _BackendCollector(Collector):
    def __init__(self, backend: BackendHealth) -> None:
        self._backend = backend

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily(
            f"{PREFIX}_oxide_api_up",
            "1 when the last check of the Oxide API passed, 0 when it failed or none ran yet.",
        )
        up.add_metric([], 1.0 if self._backend.ok else 0.0)
        yield up
        problem = GaugeMetricFamily(
            f"{PREFIX}_oxide_api_problem",
            "1 for the reason the Oxide API is not usable now (unauthorized: expired token, "
            "unreachable, ...), 0 for the others.",
            labels=["reason"],
        )
        for reason in REASONS:
            problem.add_metric([reason], 1.0 if self._backend.reason == reason else 0.0)
        yield problem


def track_backend(registry: CollectorRegistry, backend: BackendHealth) -> None:
    registry.register(_BackendCollector(backend))
