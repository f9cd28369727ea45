"""Handlers of the /v1 endpoints a CSI plugin uses, and their route table.

Each handler parses what dropshot would extract (path, query, body: 400s without error_code)
and calls the matching ``ops_*`` function, which applies Nexus's rules.
"""

from __future__ import annotations

from oxide_sim import (
    ops_attach,
    ops_disks,
    ops_images,
    ops_instance_delete,
    ops_instances,
    ops_snapshots,
)
from oxide_sim.handlers_common import list_params, path_sel, query_sel, required_project
from oxide_sim.routing import Request, Response, Route
from oxide_sim.rules import (
    parse_disk_create,
    parse_disk_path,
    parse_image_create,
    parse_snapshot_create,
)
from oxide_sim.views import current_user_view, project_view

TIB = 2**40


def me(req: Request) -> Response:
    with req.core.lock:
        return Response(200, current_user_view(req.core.state))


def project_get(req: Request) -> Response:
    sel = path_sel(req, "project")
    with req.core.lock:
        return Response(200, project_view(req.core.project(sel)))


def utilization(req: Request) -> Response:
    core = req.core
    with core.lock:
        active = [
            i
            for i in core.state.instances.values()
            if i.run_state in ("starting", "running", "stopping")
        ]
        provisioned = {
            "cpus": sum(i.ncpus for i in active),
            "memory": sum(i.memory for i in active),
            "storage": core.provisioned_storage(),
        }
    capacity = {"cpus": 1024, "memory": 8 * TIB, "storage": core.cfg.storage_capacity}
    return Response(200, {"capacity": capacity, "provisioned": provisioned})


def images_list(req: Request) -> Response:
    params, project = list_params(req, project_required=False)
    return Response(200, ops_images.list_images(req.core, params, project))


def images_create(req: Request) -> Response:
    body = parse_image_create(req.body)
    return Response(201, ops_images.create_image(req.core, query_sel(req), body))


def image_get(req: Request) -> Response:
    sel = path_sel(req, "image")
    return Response(200, ops_images.get_image(req.core, sel, query_sel(req)))


def image_delete(req: Request) -> Response:
    sel = path_sel(req, "image")
    ops_images.delete_image(req.core, sel, query_sel(req))
    return Response(204)


def disks_list(req: Request) -> Response:
    params, project = list_params(req, project_required=True)
    assert project is not None
    return Response(200, ops_disks.list_disks(req.core, params, project))


def disks_create(req: Request) -> Response:
    project = required_project(req)
    body = parse_disk_create(req.body, disk_backend=req.core.cfg.played.disk_backend)
    return Response(201, ops_disks.create_disk(req.core, project, body))


def disk_get(req: Request) -> Response:
    sel = path_sel(req, "disk")
    return Response(200, ops_disks.get_disk(req.core, sel, query_sel(req)))


def disk_delete(req: Request) -> Response:
    sel = path_sel(req, "disk")
    ops_disks.delete_disk(req.core, sel, query_sel(req))
    return Response(204)


def snapshots_list(req: Request) -> Response:
    params, project = list_params(req, project_required=True)
    assert project is not None
    return Response(200, ops_snapshots.list_snapshots(req.core, params, project))


def snapshots_create(req: Request) -> Response:
    project = required_project(req)
    body = parse_snapshot_create(req.body)
    return Response(201, ops_snapshots.create_snapshot(req.core, project, body))


def snapshot_get(req: Request) -> Response:
    sel = path_sel(req, "snapshot")
    return Response(200, ops_snapshots.get_snapshot(req.core, sel, query_sel(req)))


def snapshot_delete(req: Request) -> Response:
    sel = path_sel(req, "snapshot")
    ops_snapshots.delete_snapshot(req.core, sel, query_sel(req))
    return Response(204)


def instances_list(req: Request) -> Response:
    params, project = list_params(req, project_required=True)
    assert project is not None
    return Response(200, ops_instances.list_instances(req.core, params, project))


def instance_get(req: Request) -> Response:
    sel = path_sel(req, "instance")
    return Response(200, ops_instances.get_instance(req.core, sel, query_sel(req)))


def instance_delete(req: Request) -> Response:
    sel = path_sel(req, "instance")
    ops_instance_delete.delete_instance(req.core, sel, query_sel(req))
    return Response(204)


def instance_start(req: Request) -> Response:
    sel = path_sel(req, "instance")
    return Response(202, ops_instances.start_instance(req.core, sel, query_sel(req)))


def instance_stop(req: Request) -> Response:
    sel = path_sel(req, "instance")
    return Response(202, ops_instances.stop_instance(req.core, sel, query_sel(req)))


def instance_disks(req: Request) -> Response:
    sel = path_sel(req, "instance")
    params, project = list_params(req, project_required=False)
    return Response(200, ops_instances.list_instance_disks(req.core, sel, project, params))


def instance_attach(req: Request) -> Response:
    sel = path_sel(req, "instance")
    project = query_sel(req)
    disk = parse_disk_path(req.body)
    return Response(202, ops_attach.attach(req.core, sel, project, disk))


def instance_detach(req: Request) -> Response:
    sel = path_sel(req, "instance")
    project = query_sel(req)
    disk = parse_disk_path(req.body)
    return Response(202, ops_attach.detach(req.core, sel, project, disk))


V1_ROUTES: list[Route] = [
    Route("/v1/me", {"GET": me}),
    Route("/v1/projects/{project}", {"GET": project_get}),
    Route("/v1/utilization", {"GET": utilization}),
    Route("/v1/images", {"GET": images_list, "POST": images_create}, frozenset({"POST"})),
    Route("/v1/images/{image}", {"GET": image_get, "DELETE": image_delete}),
    Route("/v1/disks", {"GET": disks_list, "POST": disks_create}, frozenset({"POST"})),
    Route("/v1/disks/{disk}", {"GET": disk_get, "DELETE": disk_delete}),
    Route(
        "/v1/snapshots",
        {"GET": snapshots_list, "POST": snapshots_create},
        frozenset({"POST"}),
    ),
    Route("/v1/snapshots/{snapshot}", {"GET": snapshot_get, "DELETE": snapshot_delete}),
    Route("/v1/instances", {"GET": instances_list}),
    Route("/v1/instances/{instance}", {"GET": instance_get, "DELETE": instance_delete}),
    Route("/v1/instances/{instance}/start", {"POST": instance_start}),
    Route("/v1/instances/{instance}/stop", {"POST": instance_stop}),
    Route("/v1/instances/{instance}/disks", {"GET": instance_disks}),
    Route(
        "/v1/instances/{instance}/disks/attach",
        {"POST": instance_attach},
        frozenset({"POST"}),
    ),
    Route(
        "/v1/instances/{instance}/disks/detach",
        {"POST": instance_detach},
        frozenset({"POST"}),
    ),
]
