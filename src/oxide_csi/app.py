"""Wiring: from a :class:`ServeConfig` to the servicers registered on one server.

This is the only module that knows which pieces a mode needs. The node side is built without the
Oxide client on purpose: a node plugin holds no credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog
from grpc_health.v1 import health

from oxide_csi.config import ControllerSettings, NodeSettings, OxideSettings, ServeConfig
from oxide_csi.config_common import USER_AGENT
from oxide_csi.server.grpc_server import Registration, ServerSpec
from oxide_csi.server.interceptor import ErrorTranslator
from oxide_csi.servicers.identity import IdentityServicer

log = structlog.get_logger(__name__)

#: How often the controller looks for ``oxide-csi release-instance`` requests.
RELEASE_POLL_SECONDS = 2.0

# The controller and node parts are imported where they are built, not here: a node plugin runs
# on every node, and every module it does not load (httpx, the Oxide client, the controller,
# prometheus-client when metrics are off) is memory it does not hold.
if TYPE_CHECKING:
    from oxide_csi.controller.attach import AttachCoordinator, CycleObserver, CycleReport
    from oxide_csi.controller.attach.graceful import PowerOff
    from oxide_csi.kube.attacher import CycleEvents
    from oxide_csi.kube.wiring import KubeParts
    from oxide_csi.metrics import PluginMetrics
    from oxide_csi.oxide import OxideClient, OxideConfig
    from oxide_csi.oxide.models import Instance
    from oxide_csi.poweroff.settings import GuestSettings
    from oxide_csi.servicers.controller import ControllerServicer
    from oxide_csi.servicers.node import NodeServicer


def oxide_client_config(settings: OxideSettings, who: str = "") -> OxideConfig:
    """``who`` (the controller's Lease identity) goes into the User-Agent, so the rack's
    logs tell two controllers apart."""
    from oxide_csi.oxide import OxideConfig

    return OxideConfig(
        host=settings.credentials.host,
        token=settings.credentials.token.reveal(),
        project=settings.project,
        api_version=settings.api_version,
        request_timeout=settings.request_timeout,
        user_agent=f"{USER_AGENT} ({who})" if who else USER_AGENT,
        ca_file=str(settings.ca_file) if settings.ca_file else None,
        token_file=str(settings.credentials.token_file)
        if settings.credentials.token_file
        else None,
    )


def controller_parts(
    client: OxideClient,
    settings: ControllerSettings,
    metrics: PluginMetrics | None = None,
    kube: KubeParts | None = None,
) -> tuple[ControllerServicer, AttachCoordinator]:
    """The controller servicer and its attach coordinator (which the caller starts and closes).

    The attach record lives in ConfigMaps and each instance is fenced by its Lease with the
    Kubernetes backend (``kube``); otherwise in ``settings.state_dir`` (dev mode, one
    controller outside a cluster).
    """
    from oxide_csi.controller.attach import (
        AttachCoordinator,
        AttachRecordStore,
        FileAttachRecordStore,
        HotAttach,
    )
    from oxide_csi.controller.attach.fence import UNFENCED
    from oxide_csi.controller.attach.ledger_file import FileLedgerStore
    from oxide_csi.controller.attach.released import DetachPolicy
    from oxide_csi.controller.slots import rack_slot_limit
    from oxide_csi.controller.snapshots import SnapshotManager
    from oxide_csi.controller.volumes import VolumeManager
    from oxide_csi.metrics import ObservedRecordStore
    from oxide_csi.servicers.controller import Attacher, ControllerServicer

    record: AttachRecordStore = (
        kube.store if kube is not None else FileAttachRecordStore(settings.state_dir / "attach")
    )
    if metrics is not None:
        observed = ObservedRecordStore(record, metrics.set_records)
        metrics.track_stopped(observed.longest_stopped_seconds)
        record = observed
    observers: list[CycleObserver] = [metrics.on_cycle] if metrics is not None else []
    events = None
    if kube is not None:
        from oxide_csi.kube.attacher import CycleEvents

        events = CycleEvents(kube.gate, kube.events, client)
        observers.append(events.on_cycle)
    coordinator = AttachCoordinator(
        client,
        max_disks=rack_slot_limit(client, settings.max_disks_per_instance),
        batch_window=settings.batch_window,
        op_timeout=settings.cycle_timeout,
        record=record,
        on_cycle=_each(observers),
        hot=HotAttach(client, timeout=settings.hot_attach_timeout) if settings.hot_attach else None,
        own_instance_id=settings.controller_instance_id,
        on_stopping=events.on_stopping if events is not None else None,
        fence=kube.fence if kube is not None else UNFENCED,
        power_off=_power_off(settings, kube, metrics, events),
        ledger=FileLedgerStore(settings.state_dir / "released") if kube is None else kube.ledger,
        detach_policy=DetachPolicy(settings.detach_policy),
    )
    _log_guard(settings.controller_instance_id)
    released = coordinator.released
    if released is not None:
        released.alert_after = settings.deferred_delete_alert_after
        if metrics is not None:
            from oxide_csi.metrics.ledger import track_ledger

            track_ledger(metrics.registry, released.figures)
        if kube is not None:
            from oxide_csi.kube.deferred_events import overdue_events

            released.on_overdue = overdue_events(kube.gate, kube.events)
    if metrics is not None:
        metrics.track_in_flight(coordinator.in_flight)
    attacher: Attacher = coordinator
    if kube is not None and events is not None:
        from oxide_csi.kube.attacher import ClusterAttacher

        attacher = ClusterAttacher(coordinator, kube.gate, events, client)
    volumes = VolumeManager(client, coordinator)
    servicer = ControllerServicer(volumes, SnapshotManager(client, volumes), attacher)
    return servicer, coordinator


def _power_off(
    settings: ControllerSettings,
    kube: KubeParts | None,
    metrics: PluginMetrics | None,
    events: CycleEvents | None,
) -> PowerOff:
    """Oxide's hard stop, or (``--graceful-power-off``) the guest's own shutdown first, asked
    through Kubernetes or, with the file backend, the state directory; each power-off counted
    and, in a cluster, an Event on the Node."""
    from oxide_csi.controller.attach.graceful import GracefulPowerOff, hard_power_off
    from oxide_csi.poweroff.messages import ControllerChannel

    def tell(inst: Instance, how: str, why: str) -> None:
        if metrics is not None:
            metrics.on_power_off(how, why)
        if events is not None:
            events.on_power_off(inst, how, why)

    if not settings.graceful_power_off:
        return hard_power_off
    channel: ControllerChannel
    if kube is not None:
        from oxide_csi.poweroff.kube import KubeChannel

        channel = KubeChannel(kube.client, kube.settings.namespace)
    else:
        from oxide_csi.poweroff.files import FileChannel

        channel = FileChannel(settings.state_dir / "poweroff")
    graceful = GracefulPowerOff(
        channel,
        timeout=settings.graceful_stop_timeout,
        issuer=kube.settings.identity if kube is not None else "",
        on_power_off=tell,
    )
    log.info("graceful power-off on", stop_timeout=settings.graceful_stop_timeout)
    return graceful


def _start_guest(settings: GuestSettings) -> Callable[[], Awaitable[None]]:
    """The node's heartbeat and power-off handler, in the background; returns their closer."""
    from oxide_csi.poweroff.agent import CommandPowerOff, GuestAgent, read_boot_id
    from oxide_csi.poweroff.messages import NodeChannel

    channel: NodeChannel
    if settings.kube is not None:
        from oxide_csi.kube.client import kube_client
        from oxide_csi.poweroff.kube import KubeChannel

        channel = KubeChannel(kube_client(settings.kube), settings.kube.namespace, own=True)
    else:
        from oxide_csi.poweroff.files import FileChannel

        assert settings.channel_dir is not None
        channel = FileChannel(settings.channel_dir)
    action = settings.action or CommandPowerOff(settings.command)
    agent = GuestAgent(
        channel,
        instance_id=settings.instance_id,
        boot_id=lambda: read_boot_id(settings.boot_id_file),
        power_off=action if settings.handler else None,
        heartbeat=settings.heartbeat,
        period=settings.heartbeat_period,
        duration=settings.heartbeat_duration,
    )
    return agent.start()


def _answer_release_requests(
    coordinator: AttachCoordinator, settings: ControllerSettings, kube: KubeParts | None
) -> Awaitable[None]:
    """The loop that carries out ``oxide-csi release-instance`` (``release_requests.py``)."""
    from oxide_csi.controller.attach.release_requests import (
        FileReleaseRequests,
        ReleaseRequestStore,
        answer_requests,
    )

    store: ReleaseRequestStore = (
        kube.requests
        if kube is not None
        else FileReleaseRequests(settings.state_dir / "release-requests")
    )
    return answer_requests(
        coordinator, store, interval=RELEASE_POLL_SECONDS, cycle_timeout=settings.cycle_timeout
    )


def _each(observers: list[CycleObserver]) -> CycleObserver | None:
    """One observer that tells all of ``observers``, or None when there are none."""
    if not observers:
        return None

    def tell(report: CycleReport) -> None:
        for observer in observers:
            observer(report)

    return tell


def _log_guard(own_instance_id: str | None) -> None:
    """Say at every start which instance the controller will never power off -- or, loudly,
    that the operator turned that guard off."""
    if own_instance_id is None:
        log.warning(
            "self power-off guard is OFF (--controller-instance-id=none): a publish to the "
            "instance this controller runs on would stop it mid-cycle"
        )
    else:
        log.info("self power-off guard on", controller_instance_id=own_instance_id)


def node_servicer(settings: NodeSettings) -> NodeServicer:
    """The node servicer. It gets no Oxide client: it finds disks by the serial it is told.

    Dev mode sets ``loop_device_dir``: the loop devices backed by files in it are then this
    node's disks (see :func:`oxide_csi.node.device_identity.identity_sources`).
    """
    from oxide_csi.node.device_identity import identity_sources
    from oxide_csi.node.devices import DeviceFinder
    from oxide_csi.node.paths import PathGuard
    from oxide_csi.node.uevents import BlockDeviceEvents
    from oxide_csi.servicers.node import NodeServicer

    return NodeServicer(
        node_id=settings.node_id,
        max_disks_per_instance=settings.max_disks_per_instance,
        guard=PathGuard(settings.kubelet_dir),
        finder=DeviceFinder(
            sources=identity_sources(settings.loop_device_dir), events=BlockDeviceEvents()
        ),
        attachable=settings.attachable,
    )


def _in_background(work: Awaitable[None]) -> Callable[[], Awaitable[None]]:
    """Run ``work`` as a task without holding up the server; return what cancels it."""
    task = asyncio.ensure_future(work)

    async def close() -> None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return close


def _start_in_background(coordinator: AttachCoordinator) -> Callable[[], Awaitable[None]]:
    """Start the coordinator's recovery without holding up the server; return its closer.

    The first recovery pass can take as long as an instance refuses to start (507s). Serving
    meanwhile is safe -- each attach cycle consults its instance's record first -- and keeps
    Probe and liveness answering, so the controller is not restarted in the middle of it.
    """
    cancel = _in_background(coordinator.start())

    async def close() -> None:
        await cancel()
        await coordinator.close()

    return close


@dataclass
class Plugin:
    """Everything one ``serve`` process runs; ``resources`` closes what it opened."""

    spec: ServerSpec
    resources: AsyncExitStack = field(default_factory=AsyncExitStack)

    async def aclose(self) -> None:
        await self.resources.aclose()


async def build_plugin(config: ServeConfig) -> Plugin:
    resources = AsyncExitStack()
    registrations: list[Registration] = []
    services = ["csi.v1.Identity"]
    health_servicer = health.aio.HealthServicer()
    metrics: PluginMetrics | None = None
    translate_errors: ErrorTranslator | None = None
    if config.metrics is not None:
        from oxide_csi.metrics import MetricsServer, PluginMetrics

        # First, so that a busy metrics port fails the start before anything else is opened.
        metrics = PluginMetrics(config.mode.value)
        resources.callback(MetricsServer(config.metrics, metrics.registry).close)
    if config.mode.runs_controller:
        assert config.oxide is not None
        from oxide_csi.oxide import OxideClient
        from oxide_csi.secrets import register as register_secret

        assert config.controller is not None
        kube: KubeParts | None = None
        if config.controller.kube is not None:
            from oxide_csi.kube.wiring import open_kube

            # Before the server and recovery: an upgraded controller imports its old records.
            legacy = config.controller.state_dir / "attach"
            kube = await open_kube(config.controller.kube, legacy, resources)
        client = await resources.enter_async_context(
            OxideClient(
                oxide_client_config(config.oxide, kube.settings.identity if kube else ""),
                on_request=metrics.on_request if metrics is not None else None,
                on_token=register_secret,  # a rotated token is redacted like the first
            )
        )
        from oxide_csi.backend_health import BackendHealth

        backend = BackendHealth(client.get_project, health_servicer=health_servicer)
        if metrics is not None:
            from oxide_csi.metrics.backend import track_backend

            track_backend(metrics.registry, backend)
        resources.push_async_callback(backend.start())
        controller, coordinator = controller_parts(client, config.controller, metrics, kube)
        from oxide_csi.controller.clone_sweep import sweep_periodically
        from oxide_csi.controller.slots import announce_generation

        resources.push_async_callback(_start_in_background(coordinator))
        resources.push_async_callback(
            _in_background(_answer_release_requests(coordinator, config.controller, kube))
        )
        resources.push_async_callback(_in_background(announce_generation(client)))
        resources.push_async_callback(sweep_periodically(client))
        registrations.append(controller.register)
        services.append("csi.v1.Controller")
        from oxide_csi.controller.oxide_failures import translate_escaped

        translate_errors = translate_escaped
    if config.mode.runs_node:
        assert config.node is not None
        node = node_servicer(config.node)
        if config.node.guest is not None:
            resources.push_async_callback(_start_guest(config.node.guest))
        registrations.append(node.register)
        services.append("csi.v1.Node")
    identity = IdentityServicer(controller=config.mode.runs_controller)
    registrations.append(identity.register)
    spec = ServerSpec(
        endpoint=config.endpoint,
        registrations=registrations,
        service_names=services,
        shutdown_grace=config.shutdown_grace,
        on_call=metrics.on_call if metrics is not None else None,
        translate_errors=translate_errors,
        health_servicer=health_servicer,
    )
    return Plugin(spec=spec, resources=resources)
