"""Refusals a real API server would give: 422 Invalid for bad values, 400 for what does not
decode (unknown fields, wrong JSON types, MicroTimes without six fractional digits)."""

from __future__ import annotations

import datetime
from typing import Any

import httpx
import jsonschema
import kubernetes_validate
import pytest
from lightkube import ApiError, AsyncClient
from lightkube.models.coordination_v1 import LeaseSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.coordination_v1 import Lease

from kube_sim import ApiError as SimApiError
from kube_sim import KubeSim, resources, validation
from tests.kube_sim.conftest import NAMESPACE, cm_path, lease_path


def _refusal(http: httpx.Client, path: str, body: dict[str, Any]) -> tuple[int, str, str]:
    r = http.post(path, json=body)
    status = r.json()
    causes = status.get("details", {}).get("causes") or [{"field": ""}]
    return r.status_code, status["reason"], causes[0]["field"]


@pytest.mark.parametrize(
    ("meta", "data", "field"),
    [
        ({"name": "Upper"}, {}, "metadata.name"),
        ({"name": "a" * 254}, {}, "metadata.name"),
        ({"name": "under_score"}, {}, "metadata.name"),
        ({"name": "ok", "labels": {"bad key!": "v"}}, {}, "metadata.labels"),
        ({"name": "ok", "labels": {"k": "-starts-with-dash"}}, {}, "metadata.labels"),
        ({"name": "ok", "labels": {"k": "v" * 64}}, {}, "metadata.labels"),
        ({"name": "ok", "labels": {"Example.com/k": "v"}}, {}, "metadata.labels"),
        ({"name": "ok", "annotations": {"a/b/c": "v"}}, {}, "metadata.annotations"),
        ({"name": "ok"}, {"bad/key": "v"}, "data[bad/key]"),
        ({"name": "ok"}, {"..": "v"}, "data[..]"),
        ({}, {}, "metadata.name"),
    ],
)
def test_invalid_config_maps_are_422(
    http: httpx.Client, meta: dict[str, object], data: dict[str, str], field: str
) -> None:
    assert _refusal(http, cm_path(), {"metadata": meta, "data": data}) == (422, "Invalid", field)


def test_valid_names_and_labels_pass(http: httpx.Client) -> None:
    labels = {"csi.oxide.computer/attachable": "true", "node-role.kubernetes.io/control-plane": ""}
    body = {"metadata": {"name": "a.b-c", "labels": labels}, "data": {"key.name_1": "v"}}
    assert http.post(cm_path(), json=body).status_code == 201


def test_config_map_size_limit(http: httpx.Client) -> None:
    big = {"metadata": {"name": "big"}, "data": {"a": "x" * (1024 * 1024)}}
    assert _refusal(http, cm_path(), big)[:2] == (422, "Invalid")


def test_undecodable_bodies_are_400(http: httpx.Client) -> None:
    unknown = http.post(cm_path(), json={"metadata": {"name": "x"}, "spec": {}})
    assert unknown.status_code == 400 and 'unknown field "spec"' in unknown.json()["message"]
    wrong_type = {"metadata": {"name": "l"}, "spec": {"leaseDurationSeconds": "15"}}
    assert http.post(lease_path(), json=wrong_type).status_code == 400
    not_json = http.post(cm_path(), content=b"{", headers={"content-type": "application/json"})
    assert not_json.status_code == 400


@pytest.mark.parametrize(
    ("when", "ok"),
    [
        ("2026-12-02T18:05:00.123456Z", True),
        ("2026-12-02T19:05:00.123456+01:00", True),
        ("2026-12-02T18:05:00Z", False),  # what lightkube sends for microsecond 0
        ("2026-12-02T18:05:00.123Z", False),
        ("2026-12-02 18:05:00.123456Z", False),
    ],
)
def test_micro_time_needs_six_fractional_digits(http: httpx.Client, when: str, ok: bool) -> None:
    r = http.post(lease_path(), json={"metadata": {"name": "l"}, "spec": {"renewTime": when}})
    assert r.status_code == (201 if ok else 400)
    if ok:  # stored in UTC, as the real server's round trip writes it
        assert r.json()["spec"]["renewTime"] == "2026-12-02T18:05:00.123456Z"


async def test_lightkube_datetime_with_zero_microseconds_is_refused(client: AsyncClient) -> None:
    """A trap for the plugin: lightkube drops the fraction when it is 0, a real server refuses."""
    when = datetime.datetime(2026, 12, 2, 18, 5, tzinfo=datetime.UTC)
    lease = Lease(metadata=ObjectMeta(name="l"), spec=LeaseSpec(renewTime=when))
    with pytest.raises(ApiError) as err:
        await client.create(lease)
    assert err.value.status.code == 400


def test_lease_spec_bounds(http: httpx.Client) -> None:
    zero = {"metadata": {"name": "l"}, "spec": {"leaseDurationSeconds": 0}}
    assert _refusal(http, lease_path(), zero) == (422, "Invalid", "spec.leaseDurationSeconds")
    negative = {"metadata": {"name": "l"}, "spec": {"leaseTransitions": -1}}
    assert _refusal(http, lease_path(), negative) == (422, "Invalid", "spec.leaseTransitions")


def test_direct_access_validates_too(sim: KubeSim) -> None:
    with pytest.raises(SimApiError) as err:
        sim.add_node("Not_A_Name")
    assert err.value.code == 422 and err.value.status["reason"] == "Invalid"
    with pytest.raises(SimApiError) as err:
        sim.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    assert err.value.code == 422  # no namespace
    sim.create(
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": NAMESPACE}}
    )


@pytest.mark.parametrize(
    "obj",
    [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": 1}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "spec": {}},
        {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "spec": {"holderIdentity": 1}},
        {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"}},
        {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"}},
        {"apiVersion": "storage.k8s.io/v1", "kind": "CSINode", "metadata": {}, "spec": {}},
    ],
)
def test_schema_check_agrees_with_kubernetes_validate(obj: dict[str, Any]) -> None:
    """kube_sim caches the validator kubernetes-validate builds per call: same verdicts."""
    try:
        kubernetes_validate.validate(obj, "1.34", strict=True)
        expected = None
    except kubernetes_validate.ValidationError as e:
        expected = (list(e.path), e.validator)
    res = resources.require(obj["apiVersion"], obj["kind"])
    try:
        validation._validator(res.api_version, res.kind, "1.34").validate(obj)
        got = None
    except jsonschema.ValidationError as e:
        got = (list(e.path), e.validator)
    assert got == expected
