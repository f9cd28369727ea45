"""Reads and writes over real HTTP: resourceVersions, conflicts, the Status error bodies."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from lightkube import ApiError, AsyncClient
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap, Node
from lightkube.types import PatchType

from kube_sim import KubeSim
from tests.kube_sim.conftest import NAMESPACE, cm_path


async def test_create_sets_server_fields_and_rv_increases(client: AsyncClient) -> None:
    first: Any = await client.create(ConfigMap(metadata=ObjectMeta(name="one"), data={"a": "1"}))
    second: Any = await client.create(ConfigMap(metadata=ObjectMeta(name="two")))
    meta = first.metadata
    assert meta.namespace == NAMESPACE and meta.uid and meta.creationTimestamp
    assert int(second.metadata.resourceVersion) > int(meta.resourceVersion)
    got: Any = await client.get(ConfigMap, "one")
    assert got.metadata.uid == meta.uid and got.data == {"a": "1"}


async def test_stale_update_is_a_conflict_and_fresh_one_wins(client: AsyncClient) -> None:
    cm: Any = await client.create(ConfigMap(metadata=ObjectMeta(name="state"), data={"v": "1"}))
    cm.data = {"v": "2"}
    updated: Any = await client.replace(cm)
    assert updated.metadata.uid == cm.metadata.uid
    assert updated.metadata.creationTimestamp == cm.metadata.creationTimestamp
    cm.data = {"v": "3"}  # still carries the old resourceVersion
    with pytest.raises(ApiError) as err:
        await client.replace(cm)
    assert (err.value.status.code, err.value.status.reason) == (409, "Conflict")
    assert (await client.get(ConfigMap, "state")).data == {"v": "2"}


def test_error_bodies_are_status_objects(http: httpx.Client) -> None:
    assert http.post(cm_path(), json={"metadata": {"name": "x"}}).status_code == 201
    again = http.post(cm_path(), json={"metadata": {"name": "x"}})
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/json"
    body = again.json()
    assert body["kind"] == "Status" and body["apiVersion"] == "v1"
    assert body["status"] == "Failure" and body["reason"] == "AlreadyExists"
    assert body["message"] == 'configmaps "x" already exists'
    missing = http.get(cm_path("nope")).json()
    assert (missing["code"], missing["reason"]) == (404, "NotFound")
    no_ns = http.post(cm_path(namespace="elsewhere"), json={"metadata": {"name": "x"}}).json()
    assert no_ns["message"] == 'namespaces "elsewhere" not found'
    put_missing = http.put(cm_path("nope"), json={"metadata": {"name": "nope"}})
    assert put_missing.status_code == 404  # ConfigMaps are not created by PUT


def test_create_with_resource_version_and_wrong_namespace_are_refused(http: httpx.Client) -> None:
    with_rv = http.post(cm_path(), json={"metadata": {"name": "x", "resourceVersion": "5"}})
    assert with_rv.status_code == 500
    other_ns = http.post(cm_path(), json={"metadata": {"name": "x", "namespace": "default"}})
    assert other_ns.status_code == 400
    wrong_kind = http.post(cm_path(), json={"kind": "Secret", "metadata": {"name": "x"}})
    assert wrong_kind.status_code == 400


def test_noop_update_keeps_resource_version(http: httpx.Client) -> None:
    created = http.post(cm_path(), json={"metadata": {"name": "x"}, "data": {"a": "1"}}).json()
    same = http.put(cm_path("x"), json=created).json()
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    unconditional = dict(created, data={"a": "2"})
    unconditional["metadata"] = {"name": "x"}  # no resourceVersion: last write wins
    assert http.put(cm_path("x"), json=unconditional).status_code == 200


async def test_patches(client: AsyncClient) -> None:
    await client.create(
        ConfigMap(metadata=ObjectMeta(name="p", labels={"a": "1"}), data={"k": "v"})
    )
    merged: Any = await client.patch(
        ConfigMap, "p", {"data": {"n": "1"}, "metadata": {"labels": {"a": None}}}
    )
    assert merged.data == {"k": "v", "n": "1"} and not merged.metadata.labels
    merged = await client.patch(ConfigMap, "p", {"data": {"k": None}}, patch_type=PatchType.MERGE)
    assert merged.data == {"n": "1"}
    ops = [{"op": "add", "path": "/data/j", "value": "2"}, {"op": "remove", "path": "/data/n"}]
    patched = await client.patch(ConfigMap, "p", ops, patch_type=PatchType.JSON)
    assert patched.data == {"j": "2"}
    stale = {"metadata": {"resourceVersion": "1"}, "data": {"x": "y"}}
    with pytest.raises(ApiError) as err:
        await client.patch(ConfigMap, "p", stale, patch_type=PatchType.MERGE)
    assert err.value.status.code == 409
    test_op = [{"op": "test", "path": "/data/j", "value": "other"}]
    with pytest.raises(ApiError) as err:
        await client.patch(ConfigMap, "p", test_op, patch_type=PatchType.JSON)
    assert err.value.status.code == 422


def test_apply_patch_is_unsupported(http: httpx.Client) -> None:
    http.post(cm_path(), json={"metadata": {"name": "x"}})
    r = http.patch(
        cm_path("x"), content=b"{}", headers={"content-type": "application/apply-patch+yaml"}
    )
    assert r.status_code == 415


def test_delete_preconditions_and_status(http: httpx.Client) -> None:
    cm = http.post(cm_path(), json={"metadata": {"name": "x"}}).json()
    stale = {"preconditions": {"resourceVersion": "1"}}
    r = http.request("DELETE", cm_path("x"), json=stale)
    assert (r.status_code, r.json()["reason"]) == (409, "Conflict")
    fresh = {"preconditions": {"uid": cm["metadata"]["uid"]}}
    done = http.request("DELETE", cm_path("x"), json=fresh).json()
    assert done["status"] == "Success" and done["details"]["uid"] == cm["metadata"]["uid"]
    assert http.request("DELETE", cm_path("x")).status_code == 404


def test_list_paging_and_item_shape(http: httpx.Client) -> None:
    for i in range(5):
        http.post(cm_path(), json={"metadata": {"name": f"c{i}"}})
    first = http.get(cm_path(), params={"limit": 2}).json()
    assert [i["metadata"]["name"] for i in first["items"]] == ["c0", "c1"]
    assert "kind" not in first["items"][0]  # as the real server: kind/apiVersion on the list only
    rest = http.get(cm_path(), params={"limit": 10, "continue": first["metadata"]["continue"]})
    assert [i["metadata"]["name"] for i in rest.json()["items"]] == ["c2", "c3", "c4"]
    everywhere = http.get("/api/v1/configmaps").json()
    assert len(everywhere["items"]) == 5


async def test_nodes_and_csinodes_made_by_tests(sim: KubeSim, client: AsyncClient) -> None:
    sim.add_node(
        "worker-1", provider_id="oxide://0a1b", labels={"csi.oxide.computer/attachable": "true"}
    )
    sim.add_csinode("worker-1", node_id="0a1b")
    node: Any = await client.get(Node, "worker-1")
    assert node.spec.providerID == "oxide://0a1b"
    csinode = sim.get("storage.k8s.io/v1", "CSINode", "worker-1")
    assert csinode is not None and csinode["spec"]["drivers"][0]["nodeID"] == "0a1b"
    pvc = sim.add_pvc("data", "apps")
    assert pvc["metadata"]["namespace"] == "apps" and sim.get("v1", "Namespace", "apps")


def test_discovery(sim: KubeSim, http: httpx.Client) -> None:
    assert http.get("/version").json()["gitVersion"] == "v1.34.0"
    assert http.get("/api").json()["versions"] == ["v1"]
    groups = {g["name"] for g in http.get("/apis").json()["groups"]}
    assert {"coordination.k8s.io", "events.k8s.io", "storage.k8s.io"} <= groups
    leases = http.get("/apis/coordination.k8s.io/v1").json()["resources"]
    assert leases[0]["name"] == "leases" and leases[0]["namespaced"] is True
    assert http.get("/apis/apps/v1").status_code == 404
    assert http.get("/api/v1/namespaces/x/secrets").status_code == 404
