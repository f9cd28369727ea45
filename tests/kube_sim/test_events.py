"""Events: kept, listed, filtered; v1 and events.k8s.io/v1 are two views of one store; the
namespace and field rules of ``ValidateEventCreate``."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from kube_sim import KubeSim
from tests.kube_sim.conftest import NAMESPACE

V1 = "/api/v1/namespaces/{ns}/events"
EVENTS_V1 = "/apis/events.k8s.io/v1/namespaces/{ns}/events"
NOW = "2026-12-02T18:05:00.123456Z"


def _node_event(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "involvedObject": {"kind": "Node", "name": "worker-1", "apiVersion": "v1"},
        "reason": "InstanceStopping",
        "message": "stopping instance to attach pvc-1",
        "type": "Normal",
        **extra,
    }


def _pvc_event(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": name},
        "regarding": {"kind": "PersistentVolumeClaim", "name": "data", "namespace": "apps"},
        "reason": "Attached",
        "note": "attached to worker-1",
        "type": "Normal",
        "eventTime": NOW,
        "action": "Attach",
        "reportingController": "csi.oxide.computer/controller",
        "reportingInstance": "controller-0",
        **extra,
    }


def test_events_of_both_apis_are_kept_in_one_store(sim: KubeSim, http: httpx.Client) -> None:
    sim.add_namespace("apps")
    legacy = http.post(V1.format(ns="default"), json=_node_event("worker-1.a", count=1))
    assert legacy.status_code == 201
    new = http.post(EVENTS_V1.format(ns="apps"), json=_pvc_event("data.b"))
    assert new.status_code == 201 and new.json()["regarding"]["name"] == "data"
    assert [e["metadata"]["name"] for e in sim.events()] == ["worker-1.a", "data.b"]  # in order
    stored = {e["metadata"]["name"]: e for e in sim.events()}
    assert set(stored) == {"worker-1.a", "data.b"}
    assert stored["data.b"]["involvedObject"]["name"] == "data"  # core/v1 shape
    assert stored["data.b"]["message"] == "attached to worker-1"
    assert stored["data.b"]["reportingComponent"] == "csi.oxide.computer/controller"
    as_new = http.get(EVENTS_V1.format(ns="default")).json()["items"]
    assert as_new[0]["regarding"]["name"] == "worker-1" and as_new[0]["deprecatedCount"] == 1


def test_events_filtered_by_involved_object(sim: KubeSim, http: httpx.Client) -> None:
    http.post(V1.format(ns="default"), json=_node_event("worker-1.a"))
    other = _node_event("worker-2.a")
    other["involvedObject"]["name"] = "worker-2"
    http.post(V1.format(ns="default"), json=other)
    params = {"fieldSelector": "involvedObject.kind=Node,involvedObject.name=worker-2"}
    items = http.get("/api/v1/events", params=params).json()["items"]
    assert [e["metadata"]["name"] for e in items] == ["worker-2.a"]
    by_regarding = {"fieldSelector": "regarding.name=worker-1"}
    items = http.get("/apis/events.k8s.io/v1/events", params=by_regarding).json()["items"]
    assert [e["metadata"]["name"] for e in items] == ["worker-1.a"]


@pytest.mark.parametrize(
    ("path", "namespace", "body", "field"),
    [
        # a Node is cluster-scoped: its legacy Events belong in "default"
        (V1, NAMESPACE, _node_event("n.a"), "involvedObject.namespace"),
        # with eventTime, kube-system is allowed too, but not the plugin's namespace
        (
            V1,
            NAMESPACE,
            _node_event(
                "n.b",
                eventTime=NOW,
                action="Stop",
                reportingComponent="oxide-csi",
                reportingInstance="c-0",
            ),
            "involvedObject.namespace",
        ),
        (V1, "default", _node_event("n.c", eventTime=NOW), "reportingComponent"),
        (EVENTS_V1, "apps", _pvc_event("p.a", eventTime=None), "eventTime"),
        (EVENTS_V1, "apps", _pvc_event("p.b", type="Info"), "type"),
        (EVENTS_V1, "apps", _pvc_event("p.c", action=""), "action"),
        (EVENTS_V1, "apps", _pvc_event("p.d", deprecatedCount=2), "count"),
        (
            EVENTS_V1,
            "apps",
            _pvc_event("p.e", regarding={"kind": "Node", "name": "worker-1"}),
            "involvedObject.namespace",
        ),
    ],
)
def test_event_refusals(
    sim: KubeSim, http: httpx.Client, path: str, namespace: str, body: dict[str, Any], field: str
) -> None:
    sim.add_namespace("apps")
    r = http.post(path.format(ns=namespace), json=body)
    assert r.status_code == 422, r.json()
    assert field in [c["field"] for c in r.json()["details"]["causes"]]


def test_node_event_with_event_time_in_kube_system_is_fine(http: httpx.Client) -> None:
    body = _node_event(
        "n.a", eventTime=NOW, action="Stop", reportingComponent="oxide-csi", reportingInstance="c"
    )
    assert http.post(V1.format(ns="kube-system"), json=body).status_code == 201
