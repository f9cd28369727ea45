"""Prometheus metrics of the plugin (prefix ``oxide_csi_``), served on ``--metrics-address``.

``collectors.py`` defines the metrics and the hooks feeding them, ``records.py`` counts the
durable attach records, ``http.py`` serves ``/metrics``. The rest of the plugin knows nothing of
Prometheus: it exposes plain callbacks (gRPC interceptor, Oxide client, attach coordinator) and
``app.py`` connects them here.
"""

from oxide_csi.metrics.collectors import PluginMetrics
from oxide_csi.metrics.http import MetricsServer
from oxide_csi.metrics.records import ObservedRecordStore

__all__ = ["MetricsServer", "ObservedRecordStore", "PluginMetrics"]
