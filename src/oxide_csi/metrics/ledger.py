"""The released-disk ledger as metrics, read at scrape time (``controller/attach/released.py``).

``oxide_csi_released_disks`` (unpublished, still attached, waiting for a cycle),
``oxide_csi_deferred_deletions`` (deleted volumes whose disks wait for their detach) and
``oxide_csi_deferred_deletion_oldest_seconds``: the chart's alert fires when the last passes
``--deferred-delete-alert-after``. Figures come from the last recovery pass (every 30 s).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from oxide_csi.controller.attach.released import LedgerFigures
from oxide_csi.metrics.collectors import PREFIX


class _LedgerCollector(Collector):
    def __init__(self, figures: Callable[[], LedgerFigures]) -> None:
        self._figures = figures

    def collect(self) -> Iterator[GaugeMetricFamily]:
        found = self._figures()
        yield GaugeMetricFamily(
            f"{PREFIX}_released_disks",
            "Disks unpublished under the deferred detach policy, still attached to their "
            "instance until its next cycle.",
            value=found.released,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_deferred_deletions",
            "Deleted volumes whose disks wait for their instance's next cycle to be detached "
            "and deleted.",
            value=found.owed,
        )
        yield GaugeMetricFamily(
            f"{PREFIX}_deferred_deletion_oldest_seconds",
            "How long the oldest deferred deletion has waited (0: none waits).",
            value=found.oldest_owed_seconds,
        )


def track_ledger(registry: CollectorRegistry, figures: Callable[[], LedgerFigures]) -> None:
    registry.register(_LedgerCollector(figures))
