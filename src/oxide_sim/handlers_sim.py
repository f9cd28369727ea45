"""The /sim test and benchmark hooks (no authentication, never faulted, never logged).

They let a test put the simulated rack into states a real rack reaches only by accident: a
faulted disk or snapshot, an instance that cannot find capacity, an instance whose VMM fails
(and its auto-restart policy, which the API sets with a full instance update), a flaky network
(``/sim/faults``), and a guest that shuts itself down (``guest-power-off``: dev mode's node
playing the guest of an instance; counted apart from the API's hard stops).
"""

from __future__ import annotations

from typing import Any

from oxide_sim import ops_disks, ops_instances, ops_restart, ops_snapshots
from oxide_sim.core import NameOrId
from oxide_sim.error_responses import ApiError
from oxide_sim.faults import FaultInjector, parse_fault_config
from oxide_sim.names import parse_name_or_id, parse_uuid
from oxide_sim.routing import Request, Response, Route
from oxide_sim.stats import RequestStats


def _bad(message: str) -> ApiError:
    return ApiError(400, "InvalidRequest", message)


def sim_routes(faults: FaultInjector, stats: RequestStats) -> list[Route]:
    """The hooks, bound to the server's fault injector and request counters (not to the app,
    which builds its routers from these: the app depends on the hooks, never the reverse)."""

    def stats_get(req: Request) -> Response:
        body: dict[str, Any] = {
            "requests": stats.snapshot(),
            "instances": ops_instances.instance_stats(req.core),
            "faults_injected": faults.injected,
            "latency_injected": faults.latency_injected,
        }
        return Response(200, body)

    def faults_get(req: Request) -> Response:
        return Response(200, faults.cfg.to_json())

    def faults_put(req: Request) -> Response:
        try:
            cfg = parse_fault_config(req.body, faults.cfg)
        except (ValueError, TypeError) as exc:
            raise _bad(str(exc)) from None
        faults.configure(cfg)
        return Response(200, cfg.to_json())

    def disk_fault(req: Request) -> Response:
        try:
            disk_id = parse_uuid(req.params["disk_id"])
        except ValueError as exc:
            raise _bad(str(exc)) from None
        return Response(200, ops_disks.fault_disk(req.core, disk_id))

    def start_failures(req: Request) -> Response:
        sel, count = _instance_count(req)
        return Response(200, ops_instances.set_test_counter(req.core, sel, "start_failures", count))

    def hotplug_silent(req: Request) -> Response:
        sel, count = _instance_count(req)
        return Response(200, ops_instances.set_test_counter(req.core, sel, "hotplug_silent", count))

    def instance_sel(req: Request) -> NameOrId:
        try:
            return parse_name_or_id(req.params["instance"])
        except ValueError as exc:
            raise _bad(str(exc)) from None

    def guest_power_off(req: Request) -> Response:
        return Response(202, ops_instances.guest_power_off(req.core, instance_sel(req)))

    def instance_fail(req: Request) -> Response:
        return Response(200, ops_restart.fail_instance(req.core, instance_sel(req)))

    def auto_restart_policy(req: Request) -> Response:
        body = req.body if isinstance(req.body, dict) else {}
        policy = body.get("policy")
        if "policy" not in body or not (policy is None or isinstance(policy, str)):
            raise _bad('body must be {"policy": "never" | "best_effort" | null}')
        return Response(200, ops_restart.set_policy(req.core, instance_sel(req), policy))

    def snapshot_fault(req: Request) -> Response:
        try:
            snapshot_id = parse_uuid(req.params["snapshot_id"])
        except ValueError as exc:
            raise _bad(str(exc)) from None
        return Response(200, ops_snapshots.fault_snapshot(req.core, snapshot_id))

    return [
        Route("/sim/stats", {"GET": stats_get}, authenticated=False),
        Route(
            "/sim/instances/{instance}/fail",
            {"POST": instance_fail},
            authenticated=False,
        ),
        Route(
            "/sim/instances/{instance}/guest-power-off",
            {"POST": guest_power_off},
            authenticated=False,
        ),
        Route(
            "/sim/instances/{instance}/auto-restart-policy",
            {"PUT": auto_restart_policy},
            frozenset({"PUT"}),
            authenticated=False,
        ),
        Route(
            "/sim/snapshots/{snapshot_id}/fault",
            {"POST": snapshot_fault},
            authenticated=False,
        ),
        Route(
            "/sim/faults",
            {"GET": faults_get, "PUT": faults_put},
            frozenset({"PUT"}),
            authenticated=False,
        ),
        Route(
            "/sim/disks/{disk_id}/fault",
            {"POST": disk_fault},
            authenticated=False,
        ),
        Route(
            "/sim/instances/{instance}/start-failures",
            {"POST": start_failures},
            frozenset({"POST"}),
            authenticated=False,
        ),
        Route(
            "/sim/instances/{instance}/hotplug-silent",
            {"POST": hotplug_silent},
            frozenset({"POST"}),
            authenticated=False,
        ),
    ]


def _instance_count(req: Request) -> tuple[tuple[str, str], int]:
    """The ``{instance}`` path parameter and a ``{"count": N}`` body (N >= 0)."""
    body = req.body if isinstance(req.body, dict) else {}
    count = body.get("count")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise _bad('body must be {"count": N} with N >= 0')
    try:
        sel = parse_name_or_id(req.params["instance"])
    except ValueError as exc:
        raise _bad(str(exc)) from None
    return sel, count
