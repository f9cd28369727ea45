"""The plugin's Prometheus metrics and the observer callbacks that feed them.

Why a registry per plugin instead of prometheus-client's global one: tests (and benchmarks)
build several plugins in one process, and a global registry refuses a second metric of the same
name. Each :class:`PluginMetrics` owns its own :class:`CollectorRegistry`, which its HTTP
endpoint serves.

Why these labels and no others: every label value comes from a small fixed set -- gRPC method
names and status codes, the OpenAPI path *templates* the client uses (``/v1/disks/{disk}``, never
a concrete path), HTTP status codes, a cycle's outcome. Volume ids, disk and instance names, node
ids and anything resembling a credential never become a label: they would grow the series count
without bound and leak names into a monitoring system that may be shared.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)

from oxide_csi import __version__
from oxide_csi.controller.attach import CycleReport

PREFIX = "oxide_csi"

#: A CSI call lasts from a millisecond (Probe) to minutes (a publish that power-cycles a node).
GRPC_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
#: One HTTP attempt against the Oxide API; the client's per-attempt timeout is 30 s.
OXIDE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
#: Operations one power cycle carries; 7 is a full default instance beside its boot disk.
BATCH_BUCKETS = (1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 32)
#: How long a node stays off for an attach: a stop plus a boot, tens of seconds on a rack.
STOPPED_BUCKETS = (1, 2.5, 5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600)

NO_RESPONSE = "none"


class PluginMetrics:
    """Every metric of one plugin process, registered on its own registry.

    The ``on_*`` methods have exactly the shapes of the hooks they are passed to:
    :attr:`on_call` to ``ServerSpec.on_call``, :attr:`on_request` to ``OxideClient``,
    :attr:`on_cycle` to ``AttachCoordinator``. ``process`` adds the standard ``process_*``
    (memory, CPU, file descriptors) and ``python_info`` series.
    """

    def __init__(self, mode: str = "", *, process: bool = True) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        if process:
            ProcessCollector(registry=reg)
            PlatformCollector(registry=reg)
        Info(f"{PREFIX}_build", "Version and mode of this plugin process.", registry=reg).info(
            {"version": __version__, "mode": mode}
        )

        self.grpc_requests = Counter(
            f"{PREFIX}_grpc_requests",
            "CSI gRPC calls handled, by method and status code.",
            ["method", "code"],
            registry=reg,
        )
        self.grpc_seconds = Histogram(
            f"{PREFIX}_grpc_request_duration_seconds",
            "Time to handle a CSI gRPC call, by method and status code.",
            ["method", "code"],
            buckets=GRPC_BUCKETS,
            registry=reg,
        )

        self.oxide_requests = Counter(
            f"{PREFIX}_oxide_requests",
            "HTTP attempts against the Oxide API, by method, path template and status "
            f"({NO_RESPONSE!r} when no response came: timeout or connection failure).",
            ["method", "endpoint", "status"],
            registry=reg,
        )
        self.oxide_retries = Counter(
            f"{PREFIX}_oxide_retries",
            "Oxide API attempts that were retries of an earlier attempt of the same call.",
            ["method", "endpoint"],
            registry=reg,
        )
        self.oxide_seconds = Histogram(
            f"{PREFIX}_oxide_request_duration_seconds",
            "Time of one HTTP attempt against the Oxide API, by method and path template.",
            ["method", "endpoint"],
            buckets=OXIDE_BUCKETS,
            registry=reg,
        )

        self.attach_cycles = Counter(
            f"{PREFIX}_attach_cycles",
            "Attach/detach cycles of the coordinator (one stop-apply-start per batch), "
            "by result (ok or failed).",
            ["result"],
            registry=reg,
        )
        self.attach_batch = Histogram(
            f"{PREFIX}_attach_batch_size",
            "Attach/detach operations carried by one cycle.",
            buckets=BATCH_BUCKETS,
            registry=reg,
        )
        self.instance_stops = Counter(
            f"{PREFIX}_attach_instance_stops",
            "Instances powered off by the coordinator to attach or detach disks.",
            registry=reg,
        )
        self.power_offs = Counter(
            f"{PREFIX}_attach_power_offs",
            "Running instances powered off for a cycle with graceful power-off on, by how "
            "(guest: the node plugin shut its host down; hard: Oxide's stop) and, for a hard "
            "one, why (no-heartbeat, timeout, not-running, request-failed).",
            ["how", "reason"],
            registry=reg,
        )
        self.instance_starts = Counter(
            f"{PREFIX}_attach_instance_starts",
            "Instances started again by the coordinator after attaching or detaching disks.",
            registry=reg,
        )
        self.stopped_seconds = Histogram(
            f"{PREFIX}_attach_instance_stopped_seconds",
            "How long an instance was off on the coordinator's account: from the stop request "
            "until it ran again.",
            buckets=STOPPED_BUCKETS,
            registry=reg,
        )
        self.attach_in_flight = Gauge(
            f"{PREFIX}_attach_operations_in_flight",
            "Attach/detach operations queued or being applied.",
            registry=reg,
        )
        self.records_pending = Gauge(
            f"{PREFIX}_attach_records_pending",
            "Instances with a durable attach record: a cycle in progress, or an instance "
            "powered off by the plugin that still owes a start (stays > 0 while recovery "
            "retries).",
            registry=reg,
        )
        self.stopped_longest = Gauge(
            f"{PREFIX}_attach_instance_stopped_longest_seconds",
            "Seconds the instance that has been off the longest on the plugin's account has "
            "been off (0 when none is). A normal cycle keeps this under a few minutes; more "
            "means an instance the plugin stopped is not running again (see the guide's "
            "runbook).",
            registry=reg,
        )
        self.record_ops_pending = Gauge(
            f"{PREFIX}_attach_record_operations_pending",
            "Attach/detach operations named in durable attach records.",
            registry=reg,
        )

    # ---- hooks ----------------------------------------------------------------------------

    def on_call(self, method: str, code: str, seconds: float) -> None:
        """``ServerSpec.on_call``: one finished gRPC call (method is the short name)."""
        self.grpc_requests.labels(method, code).inc()
        self.grpc_seconds.labels(method, code).observe(seconds)

    def on_request(
        self, method: str, template: str, status: int | None, seconds: float, attempt: int
    ) -> None:
        """``OxideClient(on_request=...)``: one HTTP attempt; ``attempt > 1`` is a retry."""
        status_label = NO_RESPONSE if status is None else str(status)
        self.oxide_requests.labels(method, template, status_label).inc()
        self.oxide_seconds.labels(method, template).observe(seconds)
        if attempt > 1:
            self.oxide_retries.labels(method, template).inc()

    def on_cycle(self, report: CycleReport) -> None:
        """``AttachCoordinator(on_cycle=...)``: one cycle that did something."""
        self.attach_cycles.labels("ok" if report.ok else "failed").inc()
        if report.batch_size:
            self.attach_batch.observe(report.batch_size)
        if report.stopped:
            self.instance_stops.inc()
        if report.started:
            self.instance_starts.inc()
        if report.stopped_seconds is not None:
            self.stopped_seconds.observe(report.stopped_seconds)

    def on_power_off(self, how: str, reason: str) -> None:
        """``GracefulPowerOff(on_power_off=...)``: one running instance powered off."""
        self.power_offs.labels(how, reason).inc()

    def track_in_flight(self, count: Callable[[], int]) -> None:
        """Read the coordinator's in-flight count at every scrape."""
        self.attach_in_flight.set_function(lambda: float(count()))

    def track_stopped(self, longest_seconds: Callable[[], float]) -> None:
        """Read how long the longest-stopped instance has been off at every scrape."""
        self.stopped_longest.set_function(longest_seconds)

    def set_records(self, records: int, operations: int) -> None:
        self.records_pending.set(records)
        self.record_ops_pending.set(operations)
